"""Generation: sampling, stops, streaming, interrupts and attention capture, on SmolLM2."""

from __future__ import annotations

import torch

from llm_magics.runtime.generate import sample

PROMPT = "Once upon a time, in a small village,"


def test_seeded_sampling_is_reproducible(smollm):
    kw = dict(max_new_tokens=16, temperature=0.8, top_k=50, top_p=0.95)
    a = smollm.generate(PROMPT, seed=1, **kw)
    assert a == smollm.generate(PROMPT, seed=1, **kw)
    assert a != smollm.generate(PROMPT, seed=2, **kw)


def test_top_k_one_is_greedy(smollm):
    greedy = smollm.generate(PROMPT, max_new_tokens=10)
    assert smollm.generate(PROMPT, max_new_tokens=10, temperature=1.0, top_k=1, seed=3) == greedy


def test_sample_filters():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0])
    g = torch.Generator().manual_seed(0)
    assert sample(logits) == 0
    assert {sample(logits, 1.0, top_k=2, generator=g) for _ in range(200)} == {0, 1}
    # probabilities ~ .64 .24 .09 .03: top_p=0.7 keeps the first two, top_p=0.5 only the first
    assert {sample(logits, 1.0, top_p=0.7, generator=g) for _ in range(200)} == {0, 1}
    assert {sample(logits, 1.0, top_p=0.5, generator=g) for _ in range(50)} == {0}


def test_max_new_tokens(smollm):
    generation = smollm.generate(PROMPT, max_new_tokens=7, stream=True)
    generation.read()
    assert len(generation.token_ids) == 7 and generation.finish_reason == "length"
    assert generation.prompt_tokens == len(smollm.encode(PROMPT))


def test_stop_strings_cut_the_text(smollm):
    full = smollm.generate(PROMPT, max_new_tokens=30)
    stop = full.split()[3]  # a word that appears in the greedy continuation
    cut = smollm.generate(PROMPT, max_new_tokens=30, stop=[stop, "never-appears"], stream=True)
    pieces = list(cut)
    assert cut.text == full[: full.index(stop)] == "".join(pieces)
    assert cut.finish_reason == "stop" and stop not in cut.text


def test_eos_stops_a_chat_reply(smollm):
    reply = smollm.chat("What is the capital of France? Answer in one short sentence.", max_new_tokens=60, stream=True)
    text = reply.read()
    assert "Paris" in text and reply.finish_reason == "stop" and "<|im_end|>" not in text


def test_streaming_never_splits_a_character(smollm):
    prompt = "<|im_start|>user\nWrite five emoji about the sea 🌊 and say ¡olé! in Japanese.<|im_end|>\n<|im_start|>assistant\n"
    generation = smollm.generate(prompt, max_new_tokens=40, stream=True)
    pieces = list(generation)
    assert "".join(pieces) == generation.text == smollm.decode(generation.token_ids).rstrip("\ufffd")
    assert all("\ufffd" not in piece for piece in pieces)
    assert any(ord(ch) > 0xFFFF for ch in generation.text)  # multi-byte characters did come out
    assert all(piece.encode("utf-8").decode("utf-8") == piece for piece in pieces)


def test_keyboard_interrupt_stops_cleanly(smollm, monkeypatch):
    module = smollm.module
    calls = {"n": 0}
    real_forward = module.forward

    def forward(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # the prefill, then four decode steps, then Ctrl-C
            raise KeyboardInterrupt
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(module, "forward", forward)
    generation = smollm.generate(PROMPT, max_new_tokens=50, stream=True)
    text = generation.read()
    assert generation.finish_reason == "interrupted"
    assert len(generation.token_ids) == 5
    assert text == smollm.decode(generation.token_ids).rstrip("\ufffd")


def test_attention_captured_during_generation(smollm):
    generation = smollm.generate(PROMPT, max_new_tokens=6, stream=True, capture_attention=True)
    generation.read()
    trace = generation.attention
    n, P = len(generation.token_ids), generation.prompt_tokens
    assert len(trace.rows) == n and trace.token_ids == generation.token_ids
    for i, row in enumerate(trace.rows):
        assert row.shape == (30, 9, P + i)
        torch.testing.assert_close(row.float().sum(-1), torch.ones(30, 9), atol=2e-3, rtol=0)
    # Each row is what the explicit path computes for that query over the full sequence.
    ids = generation.prompt_ids + generation.token_ids
    _, cache = smollm.run_with_cache(ids)
    for layer in (0, 15, 29):
        full = cache[f"blocks.{layer}.attn.hook_pattern"]  # (9, T, T)
        for i, row in enumerate(trace.rows):
            query = P - 1 + i  # the position whose output chose generated token i
            torch.testing.assert_close(row[layer].float(), full[:, query, : P + i], atol=2e-3, rtol=0)
    matrix = trace.matrix()
    assert matrix.shape == (n, 30, 9, P + n - 1)
    # Attribution to prompt spans: the two halves of the prompt together take most of the attention.
    scores = trace.attribute([(0, P // 2), (P // 2, P)], layers=[10, 20])
    assert scores.shape == (n, 2) and (scores.sum(1) <= 1.0 + 1e-3).all()
    # Capturing does not change the tokens.
    plain = smollm.generate(PROMPT, max_new_tokens=6, stream=True)
    plain.read()
    assert plain.token_ids == generation.token_ids


def test_repeating_tail_detects_loops_only():
    from llm_magics.runtime.generate import repeating_tail

    assert repeating_tail([9, 1, 2, 3, 1, 2, 3, 1, 2, 3])
    assert repeating_tail([5, 5, 7, 8, 7, 8, 7, 8])
    assert not repeating_tail([1, 2, 3, 1, 2, 3])  # twice is not a loop
    assert not repeating_tail(list(range(40)))


def test_repetition_penalty_only_touches_generated_tokens():
    import torch

    from llm_magics.runtime.generate import penalize_repeats

    logits = torch.tensor([2.0, -1.0, 3.0, 0.5])
    out = penalize_repeats(logits, [0, 1, 1], 2.0)
    assert out.tolist() == [1.0, -2.0, 3.0, 0.5]
    assert penalize_repeats(logits, [0], 1.0) is logits


def test_a_looping_continuation_stops_as_repetition(smollm):
    # Counting by ones invites an endless list; the loop guard ends a verbatim cycle early.
    prompt = "la la la la la la la la la la la la la la la la"
    gen = smollm.generate(prompt, max_new_tokens=120, stream=True, stop_on_loop=True)
    gen.read()
    assert gen.finish_reason in ("repetition", "stop")
    assert len(gen.token_ids) < 120
    free = smollm.generate(prompt, max_new_tokens=40, stream=True)  # faithful by default: no guard
    free.read()
    assert free.finish_reason == "length" and len(free.token_ids) == 40
