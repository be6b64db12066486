"""Self-consistency: sample N answers at a temperature and measure how much they agree.

A model that answers the same question differently each time it is asked is telling you it
does not know. ``%%ask --samples N`` (``ask(..., samples=N)``) samples N answers at a
temperature (0.7 by default), groups the ones that say the same thing, and reports

    agreement = the share of the samples that agree with the majority answer

plus the pairwise agreement (the share of pairs of samples that agree). Two answers agree
when, after normalisation (case, citation marks, punctuation, filler words), they are equal,
or the numbers one states are all among the other's, or their content words overlap by at least ``JACCARD``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import combinations
from typing import Sequence

JACCARD = 0.6
DEFAULT_TEMPERATURE = 0.7

_MARK = re.compile(r"\[\d+\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_WORD = re.compile(r"[a-z0-9]+")
_FILLER = set(
    "a an the is are was were be been of to in on at for and or it its this that these those with by as from "
    "according sources source answer based context document documents says say".split()
)


def normalise(answer: str) -> str:
    """Lower case, no citation marks, no punctuation, single spaces."""
    text = _MARK.sub(" ", answer.lower())
    return " ".join(_WORD.findall(text))


def numbers(answer: str) -> frozenset[str]:
    return frozenset(n.replace(",", ".") for n in _NUMBER.findall(_MARK.sub(" ", answer)))


def content_words(answer: str) -> frozenset[str]:
    return frozenset(w for w in normalise(answer).split() if w not in _FILLER)


def agree(a: str, b: str) -> bool:
    """Whether two answers say the same thing (see the module docstring)."""
    if normalise(a) == normalise(b):
        return True
    na, nb = numbers(a), numbers(b)
    if na or nb:  # "8 nodes" and "8 nodes with 4 GPUs each" agree; "8" and "16" do not
        return bool(na and nb) and (na <= nb or nb <= na)
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return False
    return len(wa & wb) / len(wa | wb) >= JACCARD


@dataclass
class Consensus:
    """N sampled answers and how much they agree."""

    answers: list[str]
    majority: str = ""  # the answer that agrees with the most others
    majority_index: int = -1
    agreement: float = 0.0  # share of the samples agreeing with the majority answer
    pairwise: float = 0.0  # share of pairs of samples that agree
    groups: list[list[int]] = field(default_factory=list)  # indices agreeing with each group's first

    @classmethod
    def of(cls, answers: Sequence[str]) -> "Consensus":
        answers = [str(a) for a in answers]
        n = len(answers)
        if n == 0:
            return cls([])
        agrees = [[agree(answers[i], answers[j]) for j in range(n)] for i in range(n)]
        support = [sum(row) for row in agrees]  # each answer agrees with itself
        best = max(range(n), key=lambda i: (support[i], -i))
        pairs = list(combinations(range(n), 2))
        pairwise = sum(agrees[i][j] for i, j in pairs) / len(pairs) if pairs else 1.0
        groups, seen = [], set()
        for i in sorted(range(n), key=lambda i: -support[i]):
            if i in seen:
                continue
            group = [j for j in range(n) if j not in seen and agrees[i][j]]
            seen.update(group)
            groups.append(group)
        return cls(answers, answers[best], best, support[best] / n, pairwise, groups)

    def summary(self) -> str:
        n = len(self.answers)
        agreeing = round(self.agreement * n)
        return (f"agreement {self.agreement:.0%} ({agreeing} of {n} samples agree with the majority answer; "
                f"pairwise {self.pairwise:.0%}; {len(self.groups)} distinct answer(s))")  # fmt: skip


def ask_samples(ask, question: str, n: int, *, temperature: float | None = None, index=None, collection=None,
                k=None, hits=None, retrieval: bool = True, stream_to=None, seed: int | None = None, **kwargs):  # fmt: skip
    """``ask`` N times at a temperature, each on the same retrieval; the majority Answer, with the agreement.

    The returned Answer's ``.extras`` holds ``"samples"`` (the N answers), ``"agreement"``
    (share agreeing with the majority), ``"pairwise_agreement"`` and ``"consensus"``; its
    ``.note`` ends with the agreement summary. ``stream_to`` receives the chosen answer only.
    ``ask`` is the pipeline's (passed in, so this module sits below it).
    """
    from ..errors import UsageError

    if not isinstance(n, int) or n < 2:
        raise UsageError(f"--samples wants a number of answers of 2 or more, got {n!r}.")
    t = DEFAULT_TEMPERATURE if temperature is None else float(temperature)
    if t <= 0:
        raise UsageError("--samples needs a temperature above 0 (greedy decoding gives the same answer every time); try -t 0.7.")
    # Every sample sees the same context: retrieval is deterministic, and each ask() fills the
    # same token budget as a single answer would (a fixed k here would hand on less).
    first = 0 if seed is None else int(seed)
    answers = [ask(question, index=index, collection=collection, k=k, temperature=t, hits=hits, retrieval=retrieval,
                   memory=None, seed=first + i, **kwargs) for i in range(n)]  # fmt: skip
    consensus = Consensus.of([a.answer for a in answers])
    best = answers[consensus.majority_index]
    best.extras.update(samples=[a.answer for a in answers], agreement=consensus.agreement,
                       pairwise_agreement=consensus.pairwise, consensus=consensus, temperature=t)  # fmt: skip
    best.note = f"{best.note} {consensus.summary()}".strip() if best.note else consensus.summary()
    if stream_to is not None:
        stream_to(best.answer)
    return best
