"""``--format quote``: the answer is the sentence of the passages that says what the model said.

A small model that paraphrases its context also invents. Asked who gives the laser safety
training, SmolLM2-135M names the right person, then gives her a university no passage
mentions; asked who gives out badges *and where*, it drops the room. So the model answers
as usual (unseen), and the answer shown is the one sentence of the passages it handed on
that shares most with what that reply adds to the question (its content words not in the
question, each weighted by how few of the sentences hold it, as in BM25; the question's own
words count a little), with the passage's number. Only the reply's first sentence that adds
anything to the question is matched: that is where a model puts its answer, and what follows
it is elaboration, often copied from a neighbouring passage or invented, which otherwise
outweighs a short answer (``bench/results_quote_first_sentence.md``):

    model:  "The badges are issued by the lab manager, Marta Ruiz."
    quote:  "New members receive their access badge from Marta Ruiz, the lab manager, in room B214. [1]"

The words are the document's, so nothing is invented, and the sentence carries what the
reply left out. The model still does the reading: it decides which sentence, by what it
says. When it cites passages, only their sentences are candidates; when it says it does
not know, that stays the answer. ``Answer.extras["generated"]`` keeps the model's reply.

This is generate-then-attribute, not an extractive reader (Haystack's ``ExtractiveReader``
scores spans with a trained head): it needs no second model, and works with any backend.
"""

from __future__ import annotations

import math
import re

#: Longest sentence quoted, in characters; a longer one is cut at a word boundary.
MAX_CHARS = 400
#: Weights, against a word the reply adds to the question, of a reply word the question has
#: too, and of any question word, when matching sentences.
ECHO_WEIGHT = 0.5
QUESTION_WEIGHT = 0.3

_ITEM = re.compile(r"^(?:[-*•]|\d+[.)])\s+")
_BREAK = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)]|#+)\s)")  # a blank line, or a line starting a list item or header
# a sentence ends at . ! or ? before a capital or digit, except after a title, a common abbreviation or an initial
_SENTENCE_END = re.compile(
    r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bNo\.)(?<!\bvs\.)(?<!\bMrs\.)(?<!\bProf\.)(?<!\bFig\.)(?<!\be\.g\.)(?<!\bi\.e\.)"
    r"(?<!\b[A-Z]\.)(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])"
)
_WORD = re.compile(r"[a-z0-9_]+")
_CITE = re.compile(r"\[(\d+)\]")
_DONT_KNOW = re.compile(r"\b(?:don'?t|do not|does not|doesn'?t|cannot|can'?t) (?:know|say|contain|answer|mention)", re.I)
_STOPWORDS = frozenset(
    "a an and are as at be by can did do does for from how i in into is it its of on or that the this to was "
    "were what when where which who why with you your".split()
)  # fmt: skip


# a request for more than one sentence of the documents: those keep the model's own words under --format auto
_LONG_FORM = re.compile(
    r"^\W*(?:please\s+|can you\s+|could you\s+)?(?:summari[sz]e|explain|describe|compare|contrast|discuss|outline|list|write|draft|"
    r"rewrite|translate|why|give (?:me )?(?:an? )?(?:overview|summary))\b", re.I)  # fmt: skip


def auto_format(question: str, chain) -> str:
    """``--format auto``: "quote" for a question the ``stuff`` chain answers from its passages; "text" for a
    request to summarize, explain, describe, compare, list or write (or "why"), and for other chains."""
    if chain is None or chain.name != "stuff" or _LONG_FORM.search(question):
        return "text"
    return "quote"


def sentences(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """The sentences of ``text``: paragraphs split at sentence ends, wrapped lines joined, headers dropped."""
    out, lead = [], ""
    for block in _BREAK.split(text):
        block = _ITEM.sub("", " ".join(block.split()))  # a list item is quoted without its marker
        if block.startswith("#") and lead:  # a header ends what a lead-in could introduce
            out.append(lead)
            lead = ""
        if not block or block.startswith("#"):
            continue
        for sentence in _SENTENCE_END.split(block):
            sentence = (lead + " " + sentence).strip() if lead else sentence.strip()
            lead = ""
            if len(sentence) > max_chars:
                cut = sentence[:max_chars]
                sentence = (cut[: cut.rfind(" ")] if " " in cut else cut) + " …"
            if len(sentence) > 1:
                out.append(sentence)
        if out and out[-1].endswith(":"):  # a lead-in ("... with:") is one sentence with what it introduces
            lead = out.pop()
    if lead:
        out.append(lead)
    return out


def _words(text: str) -> set[str]:
    """Content words, a plural's "s" dropped ("drills" meets "drill")."""
    words = {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in _WORD.findall(text.lower())}
    return words - _STOPWORDS


def _answer_words(reply: str, question_words: set[str]) -> set[str]:
    """The content words of the reply's first sentence that adds a word to the question (the whole reply's if none does)."""
    for sentence in sentences(reply, max_chars=len(reply) + 1):
        words = _words(sentence)
        if words - question_words:
            return words
    return _words(reply)


def quote(reply: str, question: str, chunks) -> tuple[str, int | None]:
    """(the sentence of ``chunks`` that best matches ``reply``, followed by ``[n]``; n) or (reply, None).

    ``chunks`` are the numbered passages (``.number``, ``.text``) the model saw. The reply is
    kept as it is when it says the passages do not answer, or when there is nothing to quote.
    """
    if not reply.strip() or _DONT_KNOW.search(reply):
        return reply.strip(), None
    cited = {int(n) for n in _CITE.findall(reply)}
    candidates = [(c.number, s) for c in chunks for s in sentences(c.text)]
    if cited & {n for n, _ in candidates}:
        candidates = [(n, s) for n, s in candidates if n in cited]
    if not candidates:
        return reply.strip(), None
    question_words = _words(question)
    answer_words = _answer_words(_CITE.sub(" ", reply), question_words)
    bags = [_words(s) for _, s in candidates]
    df: dict[str, int] = {}
    for bag in bags:
        for w in bag:
            df[w] = df.get(w, 0) + 1
    idf = {w: math.log(1 + len(bags) / n) for w, n in df.items()}  # a word in few sentences says more ("8", a name)

    def score(i: int) -> float:
        bag = bags[i]
        added = sum(idf[w] for w in answer_words & bag if w not in question_words)
        echoed = sum(idf[w] for w in answer_words & bag if w in question_words)
        matched = added + ECHO_WEIGHT * echoed + QUESTION_WEIGHT * sum(idf[w] for w in question_words & bag)
        return matched / (1 + 0.01 * len(bag))

    number, sentence = candidates[max(range(len(candidates)), key=score)]  # the first of equals: the best-ranked passage
    return f"{sentence} [{number}]", number
