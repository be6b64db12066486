"""Text <-> token ids, with the `tokenizers` library doing the byte-pair encoding.

Two sources:
  * a Hugging Face `tokenizer.json` (MiniLM's WordPiece, any BPE model);
  * the metadata of a GGUF file: its vocabulary, merges and token types are
    assembled into a byte-level BPE `tokenizers.Tokenizer`, with the
    pre-tokenizer llama.cpp uses for that `tokenizer.ggml.pre`.

Chat templates are the model's own Jinja2 template, rendered in a sandbox the
way transformers' `apply_chat_template` renders them.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer as Backend, decoders, models, normalizers, pre_tokenizers, processors

# llama.cpp's pre-tokenizer regexes, by `tokenizer.ggml.pre`. Each splits the text
# into words before BPE runs; the merges were learned on words split this way.
_GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen2's split (its tokenizer.json, and llama.cpp's "qwen2" pre-tokenizer): like Llama 3's,
# but every digit on its own.
_QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_LIKE = ("qwen2", "deepseek-r1-qwen")
_DIGITS_THEN_GPT2 = ("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva")
_LLAMA3_LIKE = ("llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe")

TOKEN_TYPE_CONTROL = 3  # llama.cpp: a special token such as <|im_end|>
TOKEN_TYPE_USER_DEFINED = 4  # an added token that is matched whole but is not special


def _pre_tokenizer(pre: str | None):
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pre in _DIGITS_THEN_GPT2:  # every digit on its own, then GPT-2's split
        split = [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
        return pre_tokenizers.Sequence(split)
    if pre in _LLAMA3_LIKE:
        return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(_LLAMA3_REGEX), "isolated"), byte_level])
    if pre in _QWEN2_LIKE:
        return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(_QWEN2_REGEX), "isolated"), byte_level])
    return pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's own split


def _token_text(token) -> str | None:
    """A special token from tokenizer_config.json: a string or {"content": ...}."""
    if isinstance(token, dict):
        return token.get("content")
    return token


class Tokenizer:
    """A `tokenizers.Tokenizer` plus what generation needs: special ids, stop ids, the chat template."""

    def __init__(self, backend: Backend, *, bos_token=None, eos_token=None, pad_token=None,
                 chat_template=None, add_bos=False, max_length=None):  # fmt: skip
        self.backend = backend
        self.backend.no_padding()
        self.backend.no_truncation()
        self.bos_token, self.eos_token, self.pad_token = bos_token, eos_token, pad_token
        self.bos_token_id = backend.token_to_id(bos_token) if bos_token else None
        self.eos_token_id = backend.token_to_id(eos_token) if eos_token else None
        self.pad_token_id = backend.token_to_id(pad_token) if pad_token else None
        self.chat_template = chat_template
        self.add_bos = add_bos
        self.max_length = max_length
        self._template = None

    # ── building ──

    @classmethod
    def from_folder(cls, folder: Path) -> "Tokenizer":
        """From a Hugging Face folder: tokenizer.json, tokenizer_config.json (and chat_template.jinja)."""
        backend = Backend.from_file(str(folder / "tokenizer.json"))
        cfg_path = folder / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        template = cfg.get("chat_template")
        if (folder / "chat_template.jinja").exists():
            template = (folder / "chat_template.jinja").read_text()
        return cls(
            backend,
            bos_token=_token_text(cfg.get("bos_token")),
            eos_token=_token_text(cfg.get("eos_token")),
            pad_token=_token_text(cfg.get("pad_token")),
            chat_template=template,
            add_bos=bool(cfg.get("add_bos_token", False)),
            max_length=cfg.get("model_max_length") if (cfg.get("model_max_length") or 0) < 10**6 else None,
        )

    @classmethod
    def from_gguf_metadata(cls, meta: dict) -> "Tokenizer":
        """A byte-level BPE tokenizer from `tokenizer.ggml.*` metadata (llama.cpp's 'gpt2' model)."""
        kind = meta.get("tokenizer.ggml.model")
        if kind != "gpt2":
            raise ValueError(f"GGUF tokenizer model {kind!r} is not supported; the runtime reads byte-level BPE ('gpt2').")
        tokens = list(meta["tokenizer.ggml.tokens"])
        merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
        bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False)
        backend = Backend(bpe)
        backend.pre_tokenizer = _pre_tokenizer(meta.get("tokenizer.ggml.pre"))
        if meta.get("tokenizer.ggml.pre") in _QWEN2_LIKE:  # Qwen2's own tokenizer.json composes Unicode (NFC) first
            backend.normalizer = normalizers.NFC()
        backend.decoder = decoders.ByteLevel()
        backend.post_processor = processors.ByteLevel(trim_offsets=False)

        # Control tokens (<|im_start|>, <|endoftext|>...) must be matched whole, never split by BPE.
        types = list(meta.get("tokenizer.ggml.token_type") or [])
        specials = [AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, types) if k == TOKEN_TYPE_CONTROL]
        added = [AddedToken(t, special=False, normalized=False) for t, k in zip(tokens, types) if k == TOKEN_TYPE_USER_DEFINED]
        backend.add_special_tokens(specials)
        if added:
            backend.add_tokens(added)

        def token(key):
            index = meta.get(f"tokenizer.ggml.{key}")
            return tokens[index] if index is not None else None

        return cls(
            backend,
            bos_token=token("bos_token_id"),
            eos_token=token("eos_token_id"),
            pad_token=token("padding_token_id"),
            chat_template=meta.get("tokenizer.chat_template"),
            add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        )

    def to_dict(self) -> dict:
        """Everything but the backend, for the weights cache (the backend goes to tokenizer.json)."""
        return dict(bos_token=self.bos_token, eos_token=self.eos_token, pad_token=self.pad_token,
                    chat_template=self.chat_template, add_bos=self.add_bos, max_length=self.max_length)  # fmt: skip

    @classmethod
    def from_json(cls, tokenizer_json: str, settings: dict) -> "Tokenizer":
        return cls(Backend.from_str(tokenizer_json), **settings)

    # ── using ──

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids. Special tokens written in the text (<|im_start|>) become their single ids."""
        ids = self.backend.encode(text, add_special_tokens=add_special_tokens).ids
        if add_special_tokens and self.add_bos and self.bos_token_id is not None and ids[:1] != [self.bos_token_id]:
            ids = [self.bos_token_id] + ids
        return ids

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_strings(self, ids) -> list[str]:
        """Each token as readable text, for display: 'Ġworld' -> ' world', '##ing' stays."""
        pieces = []
        for i in ids:
            piece = self.backend.id_to_token(int(i))
            if isinstance(self.backend.decoder, decoders.ByteLevel) and piece is not None:
                piece = self.backend.decode([int(i)], skip_special_tokens=False)
            pieces.append(piece)
        return pieces

    @property
    def stop_token_ids(self) -> set[int]:
        """Ids that end a generation: EOS, plus <|endoftext|> / <|im_end|> / <|eot_id|> when the vocabulary has them."""
        ids = {self.eos_token_id} if self.eos_token_id is not None else set()
        for text in ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end|>", "</s>"):
            token_id = self.backend.token_to_id(text)
            if token_id is not None:
                ids.add(token_id)
        return ids

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True, **extra) -> str:
        """Render the model's own chat template, as transformers does (sandboxed Jinja2, trim_blocks)."""
        if not self.chat_template:
            raise ValueError("This model has no chat template; use generate() with a raw prompt.")
        if self._template is None:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            def raise_exception(message):
                raise ValueError(message)

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
            env.filters["tojson"] = lambda x, indent=None, **kw: json.dumps(x, ensure_ascii=False, indent=indent)
            env.globals["raise_exception"] = raise_exception
            self._template = env.from_string(self.chat_template)
        return self._template.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token or "",
            eos_token=self.eos_token or "",
            **extra,
        )
