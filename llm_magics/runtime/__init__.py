"""Our own PyTorch transformer runtime: the default embedder, the default generator,
and the attention data behind %attnviz.

Read it in data-flow order: config.py (the dimensions), layers.py (the parts),
model.py (one forward pass), weights.py and tokenizer.py (loading real
checkpoints), generate.py (the decode loop), capture.py (looking inside),
quantize.py (faster weight formats), api.py (what `load` returns).

Importing this package imports torch; `import llm_magics` never does.
"""

from .api import EmbeddingModel, LanguageModel, load
from .capture import ActivationCache, GenerationAttention
from .config import DecoderConfig, EncoderConfig
from .generate import Generation, GenerationSettings
from .model import Decoder, Encoder

__all__ = [
    "load",
    "LanguageModel",
    "EmbeddingModel",
    "Decoder",
    "Encoder",
    "DecoderConfig",
    "EncoderConfig",
    "Generation",
    "GenerationSettings",
    "ActivationCache",
    "GenerationAttention",
]
