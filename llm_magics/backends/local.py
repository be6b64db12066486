"""The ``local`` backend: chat with a model running on our own runtime (llm_magics.runtime).

Serves SmolLM2-135M-Instruct by default, or any local GGUF file or HF folder
(``--model PATH``). Replies stream as text pieces. With ``capture_attention`` on
(the default), each reply also records what every answer token attended to:
``usage.extra["attention"]`` is a ``runtime.GenerationAttention``, which
``%attnviz --last`` turns into a per-source grounding view.
"""

from __future__ import annotations

from typing import ClassVar, Iterator, Literal

from pydantic import Field

from ..errors import UsageError
from ..extension import Options
from ..hookspecs import hookimpl
from .base import Backend, GenerationParams, Message, Usage

def load_language_model(model: str, dtype: str = "float32"):
    """A runtime LanguageModel, loaded once per process (imports torch on first call)."""
    from ..models.cache import load_runtime_model

    return load_runtime_model(model, dtype, "decoder", "the local backend needs a decoder such as smollm2.")


class LocalBackend(Backend):
    """Generate with our own PyTorch runtime, fully offline."""

    name: ClassVar[str] = "local"
    description: ClassVar[str] = "Our own PyTorch runtime: SmolLM2-135M-Instruct, or any local GGUF file or HF folder"
    default_model: ClassVar[str] = "smollm2-135m-instruct"

    class Options(Options):
        dtype: Literal["float32", "bfloat16", "int8", "q4"] = Field(
            "float32",
            description="Weight format: float32 (exact), bfloat16, int8 weight-only, or q4 (llama.cpp's blocks in a C kernel: "
            "the fastest decode, and bf16 prefill matmuls on CPUs with bf16 units).",
        )
        capture_attention: bool = Field(
            True, description="Record what each answer token attended to (for %attnviz --last); costs some speed and memory."
        )
        capture_layers: list[int] | None = Field(None, description="Layers to record when capturing; default all.")
        repetition_penalty: float = Field(
            1.1, ge=1.0, description="Penalty on tokens the reply already used (1 = off); keeps small models out of loops."
        )
        stop_on_loop: bool = Field(
            True, description="Stop a reply whose last tokens repeat one block three times (the runtime itself does not)."
        )

    @property
    def runtime_model(self):
        """The loaded runtime.LanguageModel (loads on first use)."""
        return load_language_model(self.model, self.options.dtype)

    @property
    def tokenizer(self):
        return self.runtime_model.tokenizer

    @property
    def context_window(self) -> int:
        return self.runtime_model.context_window

    def count_tokens(self, text: str) -> int:
        return self.runtime_model.count_tokens(text)

    def prompt(self, messages: list[Message]) -> str:
        """The messages rendered with the model's own chat template."""
        return self.runtime_model.chat_prompt(messages)

    def stream(self, messages: list[Message], params: GenerationParams, usage: Usage) -> Iterator[str]:
        lm = self.runtime_model
        prompt = self.prompt(messages)
        prompt_tokens = lm.count_tokens(prompt)
        if prompt_tokens >= lm.context_window:
            raise UsageError(
                f"The prompt is {prompt_tokens} tokens but {lm.name} reads at most {lm.context_window}. "
                "Retrieve fewer chunks (-k), use smaller chunks, or pick a model with a longer context."
            )
        generation = lm.generate(
            prompt,
            max_new_tokens=params.max_tokens,
            temperature=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            seed=params.seed,
            stop=list(params.stop or ()),
            stream=True,
            logits_processor=json_constraint(lm, params),
            repetition_penalty=params.repetition_penalty or self.options.repetition_penalty,
            stop_on_loop=self.options.stop_on_loop,
            capture_attention=self.options.capture_attention,
            capture_layers=self.options.capture_layers,
        )
        usage.prompt_tokens = generation.prompt_tokens
        for piece in generation:
            usage.completion_tokens = len(generation.token_ids)
            yield piece
        usage.completion_tokens = len(generation.token_ids)
        usage.finish_reason = generation.finish_reason
        usage.extra["timings"] = dict(generation.timings)
        if generation.attention is not None:
            generation.attention.tokenizer = lm.tokenizer  # so a view can decode the ids it holds
            usage.extra["attention"] = generation.attention
            usage.extra["prompt_ids"] = list(generation.prompt_ids)
        if generation.finish_reason == "interrupted":
            raise KeyboardInterrupt  # the runtime stopped cleanly; tell the caller, who keeps the text


def json_constraint(lm, params: GenerationParams):
    """A grammar mask that holds the reply to ``params.json_schema`` (llguidance, through the runtime), or None."""
    if params.json_schema is None:
        return None
    from ..runtime.grammar import GrammarConstraint

    return GrammarConstraint.from_json_schema(lm.tokenizer, params.json_schema, whitespace_flexible=True)


@hookimpl
def register_backends(register):
    register(LocalBackend, aliases=("runtime",))
