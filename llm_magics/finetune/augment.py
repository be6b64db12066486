"""Augmentation of the training split: more ways to ask, each kind optional and counted.

    paraphrase  the user turn wrapped in other phrasings ("Question: ...", "... Answer briefly.")
    noise       typos in the user turn (adjacent letters swapped, a letter dropped): robustness
    backgen     back-generation: a model writes a new question for the same answer

Only the train split is augmented (data.prepare calls this after splitting), so no
augmented copy of a validation example can leak into training, and none into validation.
Each new Example records the kind that made it (`Example.augmented`).
"""

from __future__ import annotations

import random
from collections import Counter

from ..errors import UsageError
from .formats import Example

KINDS = ("paraphrase", "noise", "backgen")
TEMPLATES = (
    "Question: {q}",
    "{q} Answer briefly.",
    "Please answer this: {q}",
    "{q}\n(Reply with the answer only.)",
    "I need to know: {q}",
)


def _with_user(ex: Example, text: str, kind: str) -> Example:
    messages = [dict(m) for m in ex.messages]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    messages[last_user]["content"] = text
    return Example(messages, {**ex.source, "augmented_from": ex.source.get("where", "")}, augmented=kind)


def _user(ex: Example) -> str:
    return [m for m in ex.messages if m["role"] == "user"][-1]["content"]


def paraphrase(ex: Example, rng: random.Random) -> Example:
    return _with_user(ex, rng.choice(TEMPLATES).format(q=_user(ex)), "paraphrase")


def noise(ex: Example, rng: random.Random, rate: float = 0.1) -> Example:
    words = _user(ex).split(" ")
    for i, w in enumerate(words):
        if len(w) > 3 and rng.random() < rate:
            j = rng.randrange(len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.5 else w[:j] + w[j + 1 :]
    return _with_user(ex, " ".join(words), "noise")


def backgen(ex: Example, model) -> Example | None:
    """Ask `model` (a runtime LanguageModel, or anything with .chat) for another question with this answer."""
    prompt = ("Write one new question, different from the original, whose answer is exactly the answer given. "
              f"Reply with the question only.\nOriginal question: {_user(ex)}\nAnswer: {ex.answer}")  # fmt: skip
    text = model.chat(prompt, max_new_tokens=48) if hasattr(model, "chat") else model.complete(prompt).text
    text = str(text).strip().split("\n")[0].strip()
    if not text or text == _user(ex):
        return None
    return _with_user(ex, text, "backgen")


def augment_examples(train: list[Example], plan: dict, seed: int = 0, model=None) -> tuple[list[Example], Counter]:
    """New examples from `train` per `plan` ({"paraphrase": 1, "noise": 1, "backgen": 1}: copies per example)."""
    unknown = sorted(set(plan) - set(KINDS))
    if unknown:
        raise UsageError(f"Unknown augmentation {', '.join(unknown)}. Use {', '.join(KINDS)} (e.g. --augment paraphrase=1).")
    if plan.get("backgen") and model is None:
        raise UsageError("backgen augmentation needs a model to write the questions.")
    rng = random.Random(seed)
    out: list[Example] = []
    counts: Counter = Counter()
    originals = [ex for ex in train if not ex.augmented]
    for kind in KINDS:
        for _ in range(int(plan.get(kind, 0))):
            for ex in originals:
                new = paraphrase(ex, rng) if kind == "paraphrase" else noise(ex, rng) if kind == "noise" else backgen(ex, model)
                if new is not None:
                    out.append(new)
                    counts[kind] += 1
    return out, counts
