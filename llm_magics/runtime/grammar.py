"""Constrained decoding: at each step, mask every token the grammar does not allow next.

    grammar (JSON Schema, Lark or regex) ──llguidance──► token mask per step
    logits (V,) ──mask──► only tokens that keep the text a valid prefix ──sample──► token

The grammar-to-token-mask step is done by llguidance (Microsoft's Rust engine behind
Guidance, also used by vLLM, SGLang and llama.cpp). It was chosen because it installs
as one dependency-free wheel (no torch, no transformers: xgrammar requires torch and wants
a transformers tokenizer), builds its token trie straight from our ``tokenizers``
``tokenizer.json`` (``LLTokenizer``), compiles a JSON Schema lazily (no ahead-of-time
automaton over the 49k-token vocabulary as outlines-core builds) and supports Lark
grammars with embedded JSON Schemas (``%json{...}``), which a ReAct step needs: free text
for the thought, then a tool call whose arguments match the tool's schema.

    >>> constraint = GrammarConstraint.from_json_schema(lm.tokenizer, {"type": "object", ...})
    >>> lm.generate(prompt, logits_processor=constraint)   # always parses as the schema

A ``GrammarConstraint`` follows one generation (it remembers how many tokens it has seen);
make a new one, or ``reset()`` it, per generation.
"""

from __future__ import annotations

import json
import threading

import torch

_tokenizers: dict[int, object] = {}  # id(our Tokenizer) -> llguidance.LLTokenizer (building one takes ~1 s)
_lock = threading.Lock()
_BITS = torch.arange(8, dtype=torch.uint8)  # bit i of a mask byte is token 8*byte + i (little-endian words)


def ll_tokenizer(tokenizer):
    """The llguidance view of our runtime Tokenizer (its tokenizer.json), built once per tokenizer."""
    import llguidance

    with _lock:
        cached = _tokenizers.get(id(tokenizer))
        if cached is None or cached[0] is not tokenizer:
            eos = sorted(tokenizer.stop_token_ids) or None
            cached = (tokenizer, llguidance.LLTokenizer(tokenizer.backend.to_str(), eos_token=eos))
            _tokenizers[id(tokenizer)] = cached
        return cached[1]


class GrammarError(ValueError):
    """The grammar does not compile, or a token outside it was forced in."""


class GrammarConstraint:
    """A logits processor: ``constraint(generated_ids, logits) -> logits`` with disallowed tokens at -inf.

    Built from a JSON Schema (``from_json_schema``), a Lark grammar (``from_lark``, which may
    embed ``%json{...}``) or a regular expression (``from_regex``). Once the grammar is
    complete, only the end-of-sequence tokens stay allowed, so generation stops there.
    """

    def __init__(self, tokenizer, grammar: str):
        import llguidance

        self.tokenizer = tokenizer
        self.grammar = grammar
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, ll_tokenizer(tokenizer))
        if is_error:
            raise GrammarError(f"The grammar does not compile: {messages}")
        self._matcher = llguidance.LLMatcher(ll_tokenizer(tokenizer), grammar, log_level=0)
        self._eos = sorted(tokenizer.stop_token_ids)
        self._seen = 0
        self.steps = 0  # masks computed

    @classmethod
    def from_json_schema(cls, tokenizer, schema: dict | str, *, whitespace_flexible: bool = False) -> "GrammarConstraint":
        """Output must be one JSON value matching ``schema``, spaced like ``{"a": 1, "b": 2}`` unless flexible."""
        import llguidance

        schema = json.loads(schema) if isinstance(schema, str) else schema
        options = {"whitespace_flexible": whitespace_flexible, "item_separator": ", ", "key_separator": ": "}
        return cls(tokenizer, llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=options))

    @classmethod
    def from_lark(cls, tokenizer, lark: str) -> "GrammarConstraint":
        """Output must match a Lark grammar (llguidance's dialect: ``%json{...}`` embeds a JSON Schema)."""
        import llguidance

        return cls(tokenizer, llguidance.LLMatcher.grammar_from_lark(lark))

    @classmethod
    def from_regex(cls, tokenizer, regex: str) -> "GrammarConstraint":
        import llguidance

        return cls(tokenizer, llguidance.LLMatcher.grammar_from_regex(regex))

    def reset(self) -> None:
        self._matcher.reset()
        self._seen = 0

    @property
    def done(self) -> bool:
        """True once the text so far is a complete sentence of the grammar."""
        return self._matcher.is_accepting() or self._matcher.is_stopped()

    def allowed(self, vocab_size: int) -> torch.Tensor:
        """(V,) bool: which tokens may come next."""
        if self._matcher.is_stopped():  # nothing more may follow: only end of sequence
            allowed = torch.zeros(vocab_size, dtype=torch.bool)
            allowed[[e for e in self._eos if e < vocab_size]] = True
            return allowed
        mask = torch.frombuffer(bytearray(self._matcher.compute_bitmask()), dtype=torch.uint8)  # (ceil(V/32)*4,)
        bits = ((mask.unsqueeze(-1) >> _BITS) & 1).bool().flatten()  # (ceil(V/32)*32,)
        if bits.numel() >= vocab_size:
            return bits[:vocab_size]
        return torch.cat([bits, torch.zeros(vocab_size - bits.numel(), dtype=torch.bool)])  # model rows past the tokenizer

    def __call__(self, token_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        for token in token_ids[self._seen :]:
            if token in self._eos and self._matcher.is_stopped():
                continue  # end of sequence after the grammar finished (a caller that does not stop there)
            if not self._matcher.consume_token(token):
                raise GrammarError(f"Token {token} does not fit the grammar: {self._matcher.get_error()}")
        self._seen = len(token_ids)
        self.steps += 1
        allowed = self.allowed(logits.shape[-1])
        if not bool(allowed.any()):
            raise GrammarError(f"The grammar allows no next token: {self._matcher.get_error() or 'dead end'}")
        return logits.masked_fill(~allowed, float("-inf"))
