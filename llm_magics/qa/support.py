"""Does an answer come from its sources? Word overlap, refusals and explicit ``[n]`` marks.

A small model rarely writes citation marks itself, so citations are attributed by the
content words an answer shares with each source. An answer that shares (almost) nothing
with any source, or that says it does not know, is reported as not grounded.
"""

from __future__ import annotations

import re
from typing import Sequence

_WORD = re.compile(r"[a-z0-9]+")
_MARK = re.compile(r"\[(\d{1,3})\]")
_REFUSAL = re.compile(
    r"\b(i (?:do not|don'?t|cannot|can'?t) (?:know|find|answer|tell)|"
    r"(?:is|are|was|were) not (?:mentioned|provided|given|stated|in the (?:context|text|sources?))|"
    r"(?:context|text|sources?) (?:does|do) not (?:contain|say|mention|provide)|no (?:relevant )?information)\b",
    re.I,
)
STOPWORDS = frozenset(
    "the and for are but not you all any can had her was one our out has him his how its may new now own see two who did get "
    "let put say she too use that with have this will your from they them then than what when where which while into also "
    "about after there their these those would could should been being were does each more most some such only other over "
    "very just answer question context based text according provided given information source sources".split()
)

#: Below this share of the answer's content words found in the sources, it is not grounded.
MIN_SUPPORT = 0.2
#: A source is cited when it holds at least this share of the answer's content words.
MIN_CITE = 0.3


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS}


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text))


def marks(text: str) -> list[int]:
    """The ``[n]`` citation marks written in ``text``, in order, without repeats."""
    return list(dict.fromkeys(int(m) for m in _MARK.findall(text)))


def support(answer: str, sources: Sequence[str]) -> tuple[float, list[float]]:
    """(share of answer words found in any source, share found in each source)."""
    words = content_words(_MARK.sub(" ", answer))
    if not words:
        return 0.0, [0.0] * len(sources)
    per = [len(words & content_words(s)) / len(words) for s in sources]
    union = set().union(*(content_words(s) for s in sources)) if sources else set()
    return len(words & union) / len(words), per


def check(answer: str, sources: Sequence[str], chosen: Sequence[int] = ()) -> tuple[bool, list[int], str]:
    """(grounded, cited numbers 1-based, note) for ``answer`` against numbered ``sources``.

    ``chosen`` are numbers a chain picked itself (map_rerank); explicit ``[n]`` marks
    count too. An empty answer or one that says it does not know is not grounded.
    """
    text = answer.strip()
    if not text:
        return False, [], "The model gave no answer."
    if is_refusal(text):
        return False, [], "The model says the sources do not answer this."
    total, per = support(text, sources)
    cited = [n for n in marks(text) if 1 <= n <= len(sources)] + [n for n in chosen if 1 <= n <= len(sources)]
    cited += [i for i, share in enumerate(per, 1) if share >= MIN_CITE]
    if not cited and per and max(per) > 0:
        cited = [max(range(len(per)), key=per.__getitem__) + 1]
    cited = sorted(set(cited))
    if len(content_words(text)) >= 3 and total < MIN_SUPPORT:
        return False, cited, f"Only {total:.0%} of the answer's words appear in the sources, so it is probably not from them."
    return True, cited, ""
