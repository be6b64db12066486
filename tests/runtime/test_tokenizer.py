"""Tokenizers and chat templates against transformers' own."""

from __future__ import annotations

import pytest

TEXTS = [
    "Hello world",
    "  leading spaces and    runs of   spaces\t\ttabs\n\n\nnewlines  ",
    "Ünïcödé façade — naïve café, Straße, 東京タワー, Ελληνικά, русский, עברית, العربية",
    "emoji 🎉🚀👩‍👩‍👧 and flags 🇫🇷 and skin tones 👍🏽",
    "def f(x):\n\tif x:\n\t\treturn {'a': [1, 2]}  # comment\n    else:  pass",
    "special <|im_start|>user\nhi<|im_end|>\n<|endoftext|> tokens",
    "contractions: don't, I'm, we'll, they've, it's, you'd",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_gguf_tokenizer_matches_transformers(smollm, hf_smollm_tokenizer, text):
    assert smollm.encode(text) == hf_smollm_tokenizer(text).input_ids
    ids = smollm.encode(text)
    assert smollm.decode(ids) == hf_smollm_tokenizer.decode(ids)


def test_digits_are_split_one_by_one_like_llama_cpp_smollm():
    """llama.cpp's 'smollm' pre-tokenizer (and SmolLM2's own tokenizer.json) split every digit.

    transformers' GGUF loader does not (it uses GPT-2's regex for this pre-tokenizer), so digits
    are checked here against the rule itself rather than against transformers.
    """
    from llm_magics import models

    lm = models.load("smollm2")
    assert lm.tokenize("2024 is 12345") == ["2", "0", "2", "4", " is", " ", "1", "2", "3", "4", "5"]


def test_special_and_stop_tokens(smollm, hf_smollm_tokenizer):
    tok = smollm.tokenizer
    assert tok.bos_token == hf_smollm_tokenizer.bos_token == "<|im_start|>"
    assert tok.eos_token == hf_smollm_tokenizer.eos_token == "<|im_end|>"
    assert (tok.bos_token_id, tok.eos_token_id) == (1, 2)
    assert tok.stop_token_ids == {0, 2}  # <|im_end|> ends a chat turn, <|endoftext|> a document
    assert smollm.encode("<|im_start|>") == [1]
    assert not tok.add_bos  # the GGUF says tokenizer.ggml.add_bos_token = false


CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": "Capital of Italy?"},
        {"role": "assistant", "content": "Rome"},
        {"role": "user", "content": "And Spain? ünïcode 🎉"},
    ],
]


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template_matches_transformers(smollm, hf_smollm_tokenizer, messages, add_generation_prompt):
    ours = smollm.tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)
    ref = hf_smollm_tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    assert ours == ref
    assert smollm.encode(ours) == hf_smollm_tokenizer(ref).input_ids


def test_chat_prompt_default_system_message(smollm):
    prompt = smollm.chat_prompt("Hi")
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert prompt.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("text", TEXTS[:5])
def test_wordpiece_tokenizer_matches_transformers(minilm, hf_minilm, text):
    _, hf_tok = hf_minilm
    ref = hf_tok(text, truncation=True, max_length=256)
    _, cache = minilm.run_with_cache(text)
    assert cache.tokens == hf_tok.convert_ids_to_tokens(ref.input_ids)
    assert minilm.encode(text) == ref.input_ids


def test_sentence_pair_tokens_and_types(minilm, hf_minilm):
    _, hf_tok = hf_minilm
    ref = hf_tok("The cat sat.", "A dog barked.")
    _, cache = minilm.run_with_cache("The cat sat.", "A dog barked.")
    assert cache.tokens == hf_tok.convert_ids_to_tokens(ref.input_ids)
    assert cache.token_type_ids == ref.token_type_ids


def test_token_spans_match_transformers_offsets(minilm, hf_minilm):
    _, hf_tok = hf_minilm
    text = "Transformers attend to tokens, naïvely."
    ref = hf_tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert minilm.token_spans(text) == [tuple(o) for o in ref]
