"""Built-in chain types: ``stuff``, ``refine``, ``map_reduce`` and ``map_rerank``.

Each keeps every prompt inside the model's context window: ``stuff`` packs the chunks
that fit and reports the rest as dropped; the others cut a chunk that is too long on its
own; ``map_reduce`` collapses its notes again and again until they fit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Sequence

from pydantic import Field

from ...ingest.documents import Hit
from ...errors import UsageError
from ...extension import Options
from ...hookspecs import hookimpl
from .. import support
from . import prompts
from .base import LLM, ChainResult, ChainType, Numbered

_LABEL_TOKENS = 6  # "[12] " and the blank line after a chunk


def _no_room(llm: LLM) -> UsageError:
    return UsageError(
        f"The question and conversation history leave no room for context in {llm.backend.model_id}'s "
        f"{llm.context_window}-token window. Shorten the question, lower --max-tokens, or clear the memory with --reset."
    )


def _numbered(hits: Sequence[Hit], llm: LLM, budget: int) -> tuple[list[Numbered], int]:
    """Every hit numbered from 1, each cut to ``budget`` tokens; also how many were cut."""
    out, cut = [], 0
    for i, hit in enumerate(hits, 1):
        text = llm.truncate(hit.text, budget)
        cut += text != hit.text
        out.append(Numbered(i, text, hit))
    return out, cut


class Stuff(ChainType):
    """All chunks that fit in one prompt (best first); the rest are reported as dropped."""

    name = "stuff"

    class Options(Options):
        context: Literal["system", "user"] = Field(
            "system", description="Where the numbered passages go: the system message with the question alone as the "
            "user's turn (RetrievalQA's layout for chat models), or the user's turn after the default system prompt.")

    def _prompts(self, question, chunks, instructions):
        """(system or None for the default, user) for these chunks."""
        if self.options.context == "system":
            return prompts.render("stuff_system", chunks=chunks), prompts.render("stuff_question", question=question, instructions=instructions)
        return None, prompts.render("stuff", chunks=chunks, question=question, instructions=instructions)

    def run(self, question, hits, llm, *, history=(), instructions=""):
        system, user = self._prompts(question, [], instructions)
        budget = llm.prompt_budget(user, history=history, system=system)
        if budget <= _LABEL_TOKENS:
            raise _no_room(llm)
        used: list[Numbered] = []
        dropped: list[Hit] = []
        for hit in hits:
            cost = llm.count_tokens(hit.text) + _LABEL_TOKENS
            if cost <= budget:
                used.append(Numbered(len(used) + 1, hit.text, hit))
                budget -= cost
            else:
                dropped.append(hit)
        extras = {}
        if not used and hits:  # even the best chunk alone is too long: keep its beginning
            used = [Numbered(1, llm.truncate(hits[0].text, budget - _LABEL_TOKENS), hits[0])]
            dropped = list(hits[1:])
            extras["truncated"] = 1
        system, user = self._prompts(question, used, instructions)
        answer = llm.generate(user, step="stuff", history=history, final=True, system=system)
        return ChainResult(answer, [c.hit for c in used], dropped, final_messages=llm.prompts[-1]["messages"], extras=extras)


class Refine(ChainType):
    """An answer from the first chunk, then improved with each further chunk in turn."""

    name = "refine"

    def run(self, question, hits, llm, *, history=(), instructions=""):
        # The refine prompt carries the current answer (up to max_tokens) besides the chunk.
        fixed = prompts.render("refine", question=question, answer="", chunk=Numbered(0, "", None), instructions=instructions)
        budget = llm.prompt_budget(fixed, history=history) - llm.params.max_tokens - _LABEL_TOKENS
        if budget <= 0:
            raise _no_room(llm)
        chunks, cut = _numbered(hits, llm, budget)
        n = len(chunks)
        answer = llm.generate(
            prompts.render("refine_initial", chunk=chunks[0], question=question, instructions=instructions),
            step=f"refine 1/{n}", history=history, final=n == 1,
        )
        for c in chunks[1:]:
            user = prompts.render("refine", question=question, answer=answer.strip(), chunk=c, instructions=instructions)
            better = llm.generate(user, step=f"refine {c.number}/{n}", history=history, final=c.number == n)
            if better.strip():
                answer = better
            elif c.number == n:  # an empty last refinement: show the answer we had
                llm.emit(answer)
        return ChainResult(answer, list(hits), final_messages=llm.prompts[-1]["messages"], extras={"truncated": cut} if cut else {})


@dataclass
class Note:
    """What map_reduce keeps of one or more chunks, labelled with their numbers: ``[1][3]``."""

    label: str
    text: str


_NONE = re.compile(r"^\W*(none|nothing|n/a|no relevant)\b", re.I)


class MapReduce(ChainType):
    """The helpful sentences of each chunk (map), collapsed until they fit, then one answer (reduce)."""

    name = "map_reduce"

    class Options(Options):
        max_collapse_rounds: int = Field(4, ge=1, le=10, description="Most times the notes are condensed before they are cut to fit.")

    def run(self, question, hits, llm, *, history=(), instructions=""):
        n = len(hits)
        map_budget = llm.prompt_budget(prompts.render("map", chunk=Numbered(0, "", None), question=question)) - _LABEL_TOKENS
        if map_budget <= 0:
            raise _no_room(llm)
        chunks, cut = _numbered(hits, llm, map_budget)
        notes: list[Note] = []
        for c in chunks:
            extract = llm.generate(prompts.render("map", chunk=c, question=question), step=f"map {c.number}/{n}").strip()
            if extract and not _NONE.match(extract) and not support.is_refusal(extract):
                notes.append(Note(f"[{c.number}]", extract))
        extras: dict = {"truncated": cut} if cut else {}
        if not notes:  # the model found nothing in any chunk: let the reduce step read the chunks
            notes = [Note(f"[{c.number}]", c.text) for c in chunks]
            extras["map_fallback"] = True
        reduce_budget = llm.prompt_budget(prompts.render("reduce", notes=[], question=question, instructions=instructions), history=history)
        if reduce_budget <= _LABEL_TOKENS:
            raise _no_room(llm)
        notes, rounds = self._collapse(notes, question, llm, reduce_budget)
        if rounds:
            extras["collapse_rounds"] = rounds
        if self._tokens(notes, llm) > reduce_budget:  # still too long after every round: cut each note
            share = reduce_budget // len(notes) - _LABEL_TOKENS
            notes = [Note(n_.label, llm.truncate(n_.text, share)) for n_ in notes]
            extras["notes_cut"] = True
        user = prompts.render("reduce", notes=notes, question=question, instructions=instructions)
        answer = llm.generate(user, step="reduce", history=history, final=True)
        return ChainResult(answer, list(hits), final_messages=llm.prompts[-1]["messages"], extras=extras)

    @staticmethod
    def _tokens(notes: Sequence[Note], llm: LLM) -> int:
        return sum(llm.count_tokens(n.text) + _LABEL_TOKENS for n in notes)

    def _collapse(self, notes: list[Note], question: str, llm: LLM, budget: int) -> tuple[list[Note], int]:
        """Condense groups of notes that fit one collapse prompt, until all fit ``budget``."""
        group_budget = llm.prompt_budget(prompts.render("collapse", notes=[], question=question))
        rounds = 0
        while self._tokens(notes, llm) > budget and rounds < self.options.max_collapse_rounds:
            rounds += 1
            groups: list[list[Note]] = [[]]
            used = 0
            for note in notes:
                note = Note(note.label, llm.truncate(note.text, group_budget - _LABEL_TOKENS))
                cost = llm.count_tokens(note.text) + _LABEL_TOKENS
                if groups[-1] and used + cost > group_budget:
                    groups.append([])
                    used = 0
                groups[-1].append(note)
                used += cost
            collapsed = []
            for j, group in enumerate(groups, 1):
                text = llm.generate(prompts.render("collapse", notes=group, question=question), step=f"collapse {rounds}.{j}/{len(groups)}").strip()
                collapsed.append(Note("".join(g.label for g in group), text or " ".join(g.text for g in group)))
            notes = collapsed
        return notes, rounds


_SCORE = re.compile(r"(?:^|\n)[^\w\n]*(?:confidence\s+)?score\W{0,3}?\s*[:=\-]?\s*(\d{1,3}(?:\.\d+)?)\s*(?:%|/\s*100)?", re.I)


def parse_score(text: str) -> tuple[str, float | None]:
    """Split a map_rerank reply into (answer, score 0-100), score None when there is none."""
    m = _SCORE.search(text)
    if m is None:
        return text.strip(), None
    answer = (text[: m.start()] + text[m.end():]).strip()
    return answer or text.strip(), max(0.0, min(100.0, float(m.group(1))))


class MapRerank(ChainType):
    """An answer and a 0-100 score from each chunk; the best-scored answer wins.

    A reply without a readable score is not an error: such answers are ranked by the
    retrieval order instead, after any answer that did give a score.
    """

    name = "map_rerank"

    def run(self, question, hits, llm, *, history=(), instructions=""):
        n = len(hits)
        budget = llm.prompt_budget(prompts.render("rerank", chunk=Numbered(0, "", None), question=question, instructions=instructions), history=history) - _LABEL_TOKENS
        if budget <= 0:
            raise _no_room(llm)
        chunks, cut = _numbered(hits, llm, budget)
        ranked = []
        for c in chunks:
            reply = llm.generate(prompts.render("rerank", chunk=c, question=question, instructions=instructions), step=f"rerank {c.number}/{n}", history=history)
            answer, score = parse_score(reply)
            ranked.append({"number": c.number, "answer": answer, "score": score, "messages": llm.prompts[-1]["messages"]})
        scored = [r for r in ranked if r["score"] is not None and r["answer"]]
        best = max(scored, key=lambda r: (r["score"], -r["number"])) if scored else next((r for r in ranked if r["answer"]), ranked[0])
        llm.emit(best["answer"])
        extras = {"scores": [{"number": r["number"], "score": r["score"], "answer": r["answer"]} for r in ranked], "score_fallback": not scored}
        if cut:
            extras["truncated"] = cut
        return ChainResult(best["answer"], list(hits), cited=[best["number"]], final_messages=best["messages"], extras=extras)


@hookimpl
def register_chain_types(register):
    for cls in (Stuff, Refine, MapReduce, MapRerank):
        register(cls)
