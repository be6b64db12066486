"""The default embedder: all-MiniLM-L6-v2 on our own runtime (llm_magics.runtime).

``--embedder all-minilm-l6-v2`` (or ``minilm``, ``local``) uses it; ``model=PATH``
serves any local BERT-style HF folder the same way. The model loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Sequence

from pydantic import Field

from ...extension import Options
from ...hookspecs import hookimpl
from .base import Embedder

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MODEL = "all-minilm-l6-v2"

def load_embedding_model(model: str, dtype: str = "float32"):
    """A runtime EmbeddingModel, loaded once per process (imports torch on first call).

    dtype "auto" is bfloat16 where the CPU multiplies it in hardware and that is faster than float32
    here (``runtime.quantize.native_bf16`` measures it), else float32.
    """
    from ...models.cache import load_runtime_model

    if dtype == "auto":
        from ...runtime.quantize import native_bf16

        dtype = "bfloat16" if native_bf16() else "float32"
    return load_runtime_model(model, dtype, "encoder", "an embedder needs an encoder such as all-minilm-l6-v2.")


class LocalEmbedder(Embedder):
    """Sentence embeddings from a BERT-style encoder on our runtime: mean pooling, L2-normalised."""

    name: ClassVar[str] = DEFAULT_MODEL
    description: ClassVar[str] = "all-MiniLM-L6-v2 (384-d) on the built-in runtime; model=PATH for any local BERT folder"

    class Options(Options):
        model: str = Field(DEFAULT_MODEL, description="A registered encoder name or a local HF folder (config.json + safetensors).")
        batch_size: int = Field(32, gt=0, description="Texts per forward pass (texts are bucketed by length first).")
        dtype: Literal["auto", "float32", "bfloat16", "int8"] = Field(
            "auto",
            description="Weight format of the encoder. auto: bfloat16 where the CPU has bf16 matmul units (AMX, AVX512-BF16; "
            "about 3x faster, cosine to float32 vectors above 0.9999), else float32.",
        )

    def __init__(self, model: str | None = None, **options):
        if model is not None:
            options["model"] = model
        super().__init__(**options)

    @property
    def runtime_model(self):
        return load_embedding_model(self.options.model, self.options.dtype)

    @property
    def dimension(self) -> int:
        return self.runtime_model.dimension

    @property
    def max_tokens(self) -> int:
        """Word pieces per input, [CLS] and [SEP] included (256 for MiniLM); longer text is truncated."""
        return self.runtime_model.max_tokens

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        return self.runtime_model.embed(list(texts), batch_size=self.options.batch_size)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.runtime_model.token_spans(text)

    def count_tokens(self, text: str) -> int:
        """Word pieces in text, special tokens excluded."""
        return len(self.token_spans(text))

    def tokenize(self, text: str) -> list[str]:
        return self.runtime_model.tokenize(text)

    @property
    def identity(self) -> str:
        """The registered model name, or local:PATH for a folder, so vectors from another model are caught."""
        from ...models import resolve

        spec = resolve(self.options.model)
        return spec.name if spec.name == DEFAULT_MODEL else f"local:{spec.path.resolve()}"


@hookimpl
def register_embedders(register):
    register(LocalEmbedder, aliases=("local", "minilm"))
