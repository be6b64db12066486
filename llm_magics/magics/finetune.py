"""``%finetune``: fine-tune a local model on a data file; a thin layer over ``llm_magics.finetune.train``."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .. import errors
from ._util import bind, split_words, user_errors
from .ingest import parse_options


@magics_class
class FinetuneMagics(Magics):
    @magic_arguments()
    @argument("--data", "-d", help="Training examples: a .jsonl, .json or .csv file (Alpaca, ShareGPT, OpenAI chat, prompt/completion or question/answer rows), or a notebook variable holding a DataFrame or list.")
    @argument("--model", "-m", default="smollm2-135m-instruct", help="Base model: a registered name or a local .gguf / HF folder (default smollm2-135m-instruct).")
    @argument("--method", choices=("lora", "full"), default="lora", help="lora (adapters on frozen weights, default) or full (every weight trains).")
    @argument("--steps", type=int, default=100, help="Optimizer steps (default 100).")
    @argument("--tracker", help="Where to track the run: wandb (offline), mlflow, tensorboard, chart; several comma-separated.")
    @argument("--tracking-uri", help="Where the tracker writes (an MLflow store URI, a folder); default: the run folder.")
    @argument("--name", help="Register the tuned model under this name, for %%ask --model NAME and runtime.load(NAME).")
    @argument("--output-dir", help="Run folder (checkpoints, adapter). The same folder resumes an interrupted run.")
    @argument("--fresh", action="store_true", help="Start over even if the run folder has a checkpoint.")
    @argument("--format", dest="fmt", help="Force the row format: alpaca, sharegpt, openai, prompt_completion, qa.")
    @argument("--val-fraction", type=float, default=0.1, help="Share of examples held out for validation (default 0.1).")
    @argument("--seed", type=int, default=0, help="Seed for the split, the data order and the initialisation.")
    @argument("--augment", action="append", metavar="KIND=N", help="Augment the train split: paraphrase=1, noise=1, backgen=1 (repeatable).")
    @argument("--option", action="append", metavar="KEY=VALUE", help="Training option, repeatable: batch_size=8, learning_rate=3e-4, lora_rank=16, lora_targets=q,v, eval_every=20, max_seq_len=256.")
    @argument("-o", "--output", metavar="VAR", help="Also bind the result to this variable.")
    @line_magic
    @user_errors
    def finetune(self, line=""):
        """Fine-tune a model, print the loss as it trains and the validation figures before and after.

        Examples::

            %finetune --data qa.jsonl --steps 60
            %finetune --data qa.jsonl --model smollm2 --method lora --steps 200 --tracker mlflow --name smollm2-qa
            %finetune --data df --option batch_size=8 --option lora_targets=q,k,v,o --tracker chart

        Returns the ``FinetuneResult`` (losses, before/after figures, adapter and model paths).
        Ctrl-C saves a checkpoint: the same command resumes from it.
        """
        from .. import finetune

        args = self.finetune.parser.parse_args(split_words(line))
        if not args.data:
            raise errors.UsageError("Name the training data: %finetune --data FILE.jsonl (or a DataFrame/list variable). See %finetune?")
        data = self.shell.user_ns.get(args.data, args.data) if args.data.isidentifier() else args.data
        augment = {}
        for pair in args.augment or []:
            kind, _, n = pair.partition("=")
            augment[kind.strip()] = int(n) if n.strip().isdigit() else 1
        try:
            result = finetune.train(
                data, args.model, method=args.method, steps=args.steps, tracker=args.tracker,
                tracking_uri=args.tracking_uri, name=args.name, output_dir=args.output_dir, resume=not args.fresh,
                fmt=args.fmt, val_fraction=args.val_fraction, seed=args.seed, augment=augment or None,
                **parse_options(args.option),
            )  # fmt: skip
        except finetune.TrainingInterrupted as e:
            print(e)
            return None
        bind(self.shell, args.output, result)
        return result
