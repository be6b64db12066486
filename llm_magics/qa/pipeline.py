"""``ask``: a grounded answer to a question about an ``Index``, with numbered citations.

The flow: retrieve the top-k hits, keep those above ``LLMMagics.score_threshold``, let a
chain type (``stuff`` by default) build prompts and call the model, parse the reply,
check that it comes from the sources, and remember the turn. ``%%ask`` is a thin layer
over this function; a script calls it directly::

    from llm_magics import ask
    a = ask("What does the report say about costs?", collection="reports")
    a.answer, a.sources[0].source, a.timings["first_token"]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..backends.base import Backend, GenerationParams
from ..errors import UsageError
from ..ingest.documents import Hit
from . import support
from .answer import Answer, AskInterrupted, Comparison, Source
from .chain_types import LLM, ChainResult, ChainType, get_chain_type, prompts
from .session import Session, current
from .quote import auto_format, quote

#: Small models tend to go on with an invented next question; stop there.
STOP = ("\nQuestion:",)

#: A follow-up question is searched together with the previous one; those hits are used
#: when their best score beats the question's own best by this much (it needs the context).
FOLLOW_UP_MARGIN = 0.1

#: ``memory=DEFAULT``: the session's memory (per collection, or per ``session``).
DEFAULT: Any = ...


def open_index(collection: str | None = None):
    """The ``Index`` of ``collection`` (default ``LLMMagics.collection``)."""
    from .. import config

    try:
        from ..ingest.index import Index
    except ImportError as e:
        raise UsageError(f"The index module is not available ({e}). Pass index= an object with .search(query, k).") from None
    return Index(collection=collection or config.settings().collection)


def retrieve(question: str, index=None, *, collection: str | None = None, k: int | None = None, callbacks=None, budget: int | None = None, count_tokens=None) -> list[Hit]:
    """The hits for ``question`` (best first), with retriever callbacks.

    With ``budget`` tokens and a ``count_tokens`` function (and no ``k``), an ``Index``
    hands on chunks until the budget is full; otherwise the top ``k``.
    """
    from .. import config
    from ..ingest.index import Index
    from .callbacks import CallbackManager

    by_budget = k is None and budget and count_tokens is not None
    k = config.settings().k if k is None else k
    if k < 1:
        raise UsageError(f"--k must be at least 1, got {k}.")
    if budget is not None and budget < 1:
        raise UsageError(f"--budget must be at least 1 token, got {budget}.")
    index = index if index is not None else open_index(collection)
    manager = callbacks or CallbackManager()
    manager.on_retriever_start(query=question, k=k)
    if by_budget and isinstance(index, Index):
        hits = list(index.search(question, k, budget=budget, count_tokens=count_tokens))
    else:
        hits = list(index.search(question, k))
    manager.on_retriever_end(query=question, hits=hits)
    return hits


@dataclass
class Run:
    """One ``ask`` call in progress: what it was asked with, and the Answer it is making."""

    question: str
    index: Any  # an Index, or anything with .search(query, k); None: open ``collection``
    collection: str | None
    k: int | None
    chain: ChainType | None  # None: --no-retrieval, the model alone
    llm: LLM
    manager: Any  # the CallbackManager
    settings: Any  # the LLMMagics settings in force
    answer: Answer
    history: list  # the conversation's earlier messages
    instructions: str  # the output parser's format instructions
    start: float  # time.perf_counter() at the start
    budget: int | None = None  # context tokens retrieval fills (None: k chunks)


def ask(
    question: str,
    index=None,
    collection: str | None = None,
    k: int | None = None,
    chain_type: str | None = None,
    model: str | Backend | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    format: str | None = None,
    schema: Any = None,
    memory: Any = DEFAULT,
    retrieval: bool = True,
    callbacks: Sequence | None = None,
    stream_to: Callable[[str], None] | None = None,
    session: str | None = None,
    hits: list[Hit] | None = None,
    budget: int | None = None,
    samples: int = 1,
    seed: int | None = None,
) -> Answer:
    """Answer ``question`` from the documents in ``index`` (or ``collection``).

    Without ``k``, retrieval fills ``budget`` tokens of context (default
    ``LLMMagics.context_budget``, counted by the model's tokenizer); ``k`` asks for
    exactly that many chunks instead.
    ``memory``: the session's conversation memory by default, None for none, or a
    ``memory.Memory``. ``retrieval=False`` asks the model alone. ``hits`` skips retrieval
    (``--compare`` reuses one retrieval). ``stream_to(piece)`` receives the answer as it
    is generated. ``format``/``schema`` choose an output parser (``Answer.parsed``); ``format``
    defaults to ``LLMMagics.format``, and ``"auto"`` picks ``quote`` or ``text`` by the question.
    Raises ``AskInterrupted`` (a KeyboardInterrupt carrying the partial Answer) on an
    interrupt and ``GenerationError`` when the backend fails; memory is untouched then.
    ``samples=N`` (N > 1) samples N answers at ``temperature`` (0.7 by default) from the same
    retrieval and returns the majority answer, its ``.extras["agreement"]`` and the samples
    (``qa/samples.py``); memory is not used. ``seed`` makes sampling repeatable (the N
    samples use seed, seed+1, ...; 0, 1, ... when not given).
    """
    if samples != 1:
        from .samples import ask_samples

        return ask_samples(ask, question, samples, index=index, collection=collection, k=k, chain_type=chain_type, model=model,
                           temperature=temperature, max_tokens=max_tokens, format=format, schema=schema, retrieval=retrieval,
                           callbacks=callbacks, stream_to=stream_to, hits=hits, budget=budget, seed=seed)  # fmt: skip
    from .. import backends, config
    from .callbacks import CallbackManager
    from .parsers import OutputParserError, get_parser

    start = time.perf_counter()
    s = config.settings()
    if not question or not question.strip():
        raise UsageError("Ask a question: put it in the cell body under %%ask, or after %ask on the line.")
    chain = get_chain_type(chain_type) if retrieval else None
    format = format or s.format
    if format == "auto":  # quote where the stuff chain answers a question, text for long-form requests (qa/quote.py)
        format = auto_format(question, chain)
    parser_options = {"schema": schema} if schema is not None else {}
    if schema is not None and format != "json":
        raise UsageError(f"A schema only applies to --format json (got --format {format}).")
    parser = get_parser(format, **parser_options)
    if parser.name == "quote" and (chain is None or chain.name != "stuff"):
        raise UsageError("--format quote shows a sentence of the passages one prompt held: use it with --chain-type stuff, and retrieval on.")
    backend = model if isinstance(model, Backend) else backends.get_model(model)
    params = GenerationParams(
        temperature=s.temperature if temperature is None else float(temperature),
        max_tokens=s.max_tokens if max_tokens is None else int(max_tokens),
        stop=STOP,
        seed=seed,
        # --format json on one model call: decoding itself keeps to the schema where the backend can (local runtime)
        json_schema=(parser.schema_dict or {"type": "object"}) if parser.name == "json" and (chain is None or chain.name == "stuff") else None,
    )
    if params.max_tokens < 1:
        raise UsageError(f"--max-tokens must be at least 1, got {params.max_tokens}.")
    manager = callbacks if isinstance(callbacks, CallbackManager) else CallbackManager.for_run(callbacks)
    quoting = parser.name == "quote"  # the reply is not streamed: the sentence that says it is, afterwards
    llm = LLM(backend, params, manager, None if quoting else stream_to)
    collection = collection or getattr(index, "collection", None) or getattr(index, "name", None)
    mem = current().memory(Session.key(session, collection)) if memory is DEFAULT else memory
    answer = Answer(question=question, answer="", chain_type=chain.name if chain else None, model=backend.model_id, extras={"format": parser.name})
    run = Run(question, index, collection, k, chain, llm, manager, s, answer,
              history=mem.messages(llm) if mem is not None else [], instructions=parser.instructions(), start=start,
              budget=None if k is not None else (budget if budget is not None else (getattr(s, "context_budget", 0) or None)))  # fmt: skip
    manager.on_chain_start(name=f"ask:{answer.chain_type or 'llm'}", inputs={"question": question, "collection": collection, "k": k})
    try:
        result = _answer(run, hits)
        if result is None:  # nothing relevant: said so without a model call
            return _finish(run)
        if quoting:
            _quote(result, question, llm, stream_to)
        answer.raw = result.extras.get("generated", result.answer)  # the model's words (--format quote shows a sentence)
        answer.answer = result.answer.strip()
        answer.sources = [Source.from_hit(i, h) for i, h in enumerate(result.used, 1)]
        answer.dropped = [Source.from_hit(0, h) for h in result.dropped]
        answer.extras.update(result.extras)
        if not parser.prose:
            _parse(answer, parser, result, llm, OutputParserError)
        else:
            answer.parsed = parser.parse(answer.answer)
            if answer.sources:
                _ground(answer, result)
    except KeyboardInterrupt:
        answer.interrupted = True
        answer.answer = answer.raw = llm.final_text or llm.partial
        answer.sources = answer.sources or []
        raise AskInterrupted(_finish(run)) from None
    if mem is not None:
        mem.save(question, answer.answer, llm)
    return _finish(run)


def _answer(run: Run, hits: list[Hit] | None) -> ChainResult | None:
    question, chain, llm, history, instructions, answer = run.question, run.chain, run.llm, run.history, run.instructions, run.answer
    index, collection, k, manager = run.index, run.collection, run.k, run.manager
    if chain is None:  # --no-retrieval: the model alone, with the conversation
        user = question + (f"\n{instructions}" if instructions else "")
        return ChainResult(llm.generate(user, step="llm", history=history, final=True), [])
    if hits is None:
        hits = retrieve(question, index, collection=collection, k=k, callbacks=manager, budget=run.budget, count_tokens=llm.count_tokens)
        last = next((m["content"] for m in reversed(history) if m["role"] == "user"), "")
        if last:  # maybe a follow-up ("when is that given?"): also search with the last question
            query = f"{last} {question}"
            expanded = retrieve(query, index, collection=collection, k=k, callbacks=manager, budget=run.budget, count_tokens=llm.count_tokens)
            if _best(expanded) > _best(hits) + FOLLOW_UP_MARGIN:
                hits = expanded
                answer.extras["retrieval_query"] = query
    relevant = _relevant(hits, run.settings)
    if not relevant:
        best = max((h.score for h in hits), default=None)
        answer.grounded = False
        answer.answer = "I could not find anything about this in the documents, so I will not guess an answer."
        answer.note = (
            f"No chunk of collection {collection!r} is similar enough to the question "
            + (f"(best score {best:.2f} < threshold {run.settings.score_threshold:.2f}). " if best is not None else "(the collection returned nothing). ")
            + "Ingest more documents with %ingest, rephrase, or lower %config LLMMagics.score_threshold."
        )
        answer.extras["below_threshold"] = [Source.from_hit(i, h) for i, h in enumerate(hits, 1)]
        return None
    return chain.run(question, relevant, llm, history=history, instructions=instructions)


def _best(hits) -> float:
    return max((h.score for h in hits), default=0.0)


def _relevant(hits, s) -> list[Hit]:
    return [h for h in hits if h.score >= s.score_threshold]


def _quote(result: ChainResult, question: str, llm: LLM, stream_to) -> None:
    """--format quote: the answer becomes the sentence of the passages that says what the model
    replied, citing its passage; ``extras["generated"]`` keeps the reply (qa/quote.py)."""
    passages = [Source.from_hit(i, h) for i, h in enumerate(result.used, 1)]  # numbered as in the prompt
    result.extras["generated"] = result.answer
    result.answer, number = quote(result.answer, question, passages)
    result.cited = [number] if number else []
    llm.final_text, llm.first_answer_at, llm.stream_to = "", None, stream_to  # what the user sees starts now
    llm.emit(result.answer)


def _ground(answer: Answer, result: ChainResult) -> None:
    # a quote is judged by what the model said (a sentence of the sources always matches them), and cites
    # the passage it copies, not every passage sharing its words
    quoted = "generated" in result.extras
    grounded, cited, note = support.check(result.extras["generated"] if quoted else answer.answer, [src.text for src in answer.sources], result.cited)
    cited = result.cited if quoted and result.cited else cited
    for src in answer.sources:
        src.cited = src.number in cited
    if not grounded:
        answer.grounded = False
        answer.note = note + " The model's words are in .raw."
        answer.answer = "The retrieved sources do not seem to answer this question."


def _parse(answer: Answer, parser, result: ChainResult, llm: LLM, OutputParserError) -> None:
    """Parse the reply; send it back with the error, at most ``parser.retries`` times."""
    text = answer.answer
    messages = list(result.final_messages)
    for attempt in range(parser.retries + 1):
        try:
            answer.parsed = parser.parse(text)
            answer.parse_error = None
            break
        except OutputParserError as e:
            answer.parse_error = str(e)
            if attempt == parser.retries:
                break
            messages = messages + [{"role": "assistant", "content": text}, {"role": "user", "content": prompts.render("retry", error=str(e), instructions=parser.instructions())}]
            llm.final_text = ""
            text = llm.chat(messages, step=f"retry {attempt + 1}", final=True).strip()
            answer.extras["retries"] = attempt + 1
    answer.answer = answer.raw = text
    for src in answer.sources:  # a structured reply is read as a whole: every source it saw
        src.cited = True


def _finish(run: Run) -> Answer:
    answer, llm, manager, start = run.answer, run.llm, run.manager, run.start
    current().remember(answer)  # the newest answer; %attnviz --last shows it
    if llm.final_capture is not None:
        answer.extras.update(llm.final_capture)
    answer.prompts = llm.prompts
    answer.usage = llm.usage
    timing = manager.get("timing")
    timings = dict(timing.timings) if timing is not None else {"llm": llm.model_seconds}
    timings["total"] = time.perf_counter() - start
    if llm.first_answer_at is not None:  # what the user waits for: the answer's first words
        timings["answer_first_token"] = llm.first_answer_at - start
    timings["overhead"] = max(0.0, timings["total"] - timings.get("llm", 0.0))
    if timings.get("llm") and llm.usage.completion_tokens:
        timings["tokens_per_s"] = llm.usage.completion_tokens / timings["llm"]
    answer.timings = timings
    manager.on_chain_end(name=f"ask:{answer.chain_type or 'llm'}", outputs={"answer": answer.answer, "grounded": answer.grounded, "sources": [s.label for s in answer.sources]})
    return answer


def compare(question: str, chain_types: Sequence[str], index=None, collection: str | None = None, k: int | None = None, on_answer: Callable[[str, Answer], None] | None = None, **options) -> Comparison:
    """Ask once per chain type on the same retrieved hits (no memory); ``on_answer`` after each."""
    if not chain_types:
        raise UsageError("--compare needs chain types, e.g. --compare stuff,refine,map_reduce,map_rerank.")
    for name in chain_types:
        get_chain_type(name)  # an unknown name fails before any model call
    hits = retrieve(question, index, collection=collection, k=k)
    answers: dict[str, Answer] = {}
    for name in chain_types:
        answers[name] = ask(question, index=index, collection=collection, k=k, chain_type=name, memory=None, hits=hits, **options)
        if on_answer is not None:
            on_answer(name, answers[name])
    return Comparison(question, answers)
