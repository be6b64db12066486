"""The model-backend extension point: chat messages in, streamed text out."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Iterator, Sequence

from ..extension import Extension

#: OpenAI-style chat messages: ``{"role": "system"|"user"|"assistant", "content": str}``.
Message = dict


@dataclass
class GenerationParams:
    """How to sample. The names follow the OpenAI API."""

    temperature: float = 0.0  # 0 means greedy
    max_tokens: int = 256
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: Sequence[str] = ()
    repetition_penalty: float | None = None  # > 1 discourages repeating the reply's own tokens (None: backend default)
    json_schema: dict | None = None  # hold the reply to this JSON Schema where the backend can (local: runtime/grammar.py)


@dataclass
class Usage:
    """Filled in by a backend while it streams: token counts and why it stopped."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop", "length", "interrupted", "error"
    extra: dict = field(default_factory=dict)


@dataclass
class Completion:
    text: str
    usage: Usage


class Backend(Extension):
    """Generates text from chat messages with one model.

    Subclasses set ``name`` and implement ``stream``. ``model`` names the model inside
    the backend (``smollm2-135m-instruct``, a local path, or a server's model id).
    """

    kind: ClassVar[str] = "backend"
    #: The model used when none is named.
    default_model: ClassVar[str | None] = None

    def __init__(self, model: str | None = None, **options):
        super().__init__(**options)
        self.model = model or self.default_model

    @property
    def context_window(self) -> int:
        """Prompt plus completion tokens the model can attend to."""
        return 2048

    @abstractmethod
    def stream(self, messages: list[Message], params: GenerationParams, usage: Usage) -> Iterator[str]:
        """Yield the reply in text pieces as they are generated, filling ``usage``.

        On KeyboardInterrupt a backend stops, sets ``usage.finish_reason = "interrupted"``
        and re-raises; whatever was yielded is kept by the caller.
        """

    def complete(self, messages: list[Message] | str, params: GenerationParams | None = None) -> Completion:
        """The whole reply at once."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        usage = Usage()
        text = "".join(self.stream(messages, params or GenerationParams(), usage))
        return Completion(text, usage)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` for this model; a backend with a tokenizer overrides this."""
        return max(1, len(text) // 4)

    @property
    def model_id(self) -> str:
        return f"{self.name}:{self.model}" if self.model else self.name
