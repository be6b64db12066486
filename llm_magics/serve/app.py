"""A FastAPI app that answers over HTTP: ``%%ask`` on a collection, or a named chain.

Endpoints (the OpenAPI page is at ``/docs``):

- ``GET /health``: ``{"status": "ok", ...}`` with what is served.
- ``POST /ask`` ``{"question": ..., "collection"?, "k"?, "chain_type"?, "max_tokens"?, "format"?}``:
  the answer and its numbered sources, as JSON.
- ``POST /ask/stream``: the same as server-sent events: ``token`` events while the model
  writes, then one ``answer`` event with the whole JSON answer (or an ``error`` event). A
  question answered as a quote (``format`` "auto", the default, or "quote") comes as one
  ``token`` event, the sentence, once the model has replied; ``"format": "text"`` streams the
  model's own words token by token.
- With a chain: ``POST /run`` ``{"inputs": {...}}`` and ``POST /run/stream``.

Model calls run one at a time (a lock): a local model computes on all cores, and two
interleaved generations would each run at half speed. Requests queue; none fail.
Each request is stateless: no conversation memory is shared between clients.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Callable

from pydantic import BaseModel, Field

#: One generation at a time per process (see the module docstring).
_generation_lock = threading.Lock()


class AskRequest(BaseModel):
    question: str = Field(..., min_length=1, description="The question.")
    collection: str | None = Field(None, description="Collection to search (default: the served one).")
    k: int | None = Field(None, ge=1, le=100, description="How many chunks to retrieve.")
    chain_type: str | None = Field(None, description="stuff, refine, map_reduce or map_rerank.")
    max_tokens: int | None = Field(None, ge=1, le=4096, description="Most tokens in the answer.")
    format: str | None = Field(None, description="text, markdown, quote or auto (default: the served settings' LLMMagics.format).")


class RunRequest(BaseModel):
    inputs: dict[str, Any] = Field(default_factory=dict, description="The chain's input variables.")


def answer_json(answer) -> dict:
    """An ``Answer`` as plain JSON: the text, its sources, and how it was made."""
    return {
        "question": answer.question,
        "answer": answer.answer,
        "grounded": answer.grounded,
        "note": answer.note,
        "model": answer.model,
        "chain_type": answer.chain_type,
        "sources": [
            {"number": s.number, "source": s.source, "page": s.page, "start_index": s.start_index,
             "score": round(float(s.score), 4), "cited": s.cited, "text": s.text}
            for s in answer.sources
        ],
        "timings": {k: round(float(v), 4) for k, v in answer.timings.items()},
    }


def run_json(run) -> dict:
    output = run.output
    try:
        json.dumps(output)
    except TypeError:
        output = str(output)
    sources = [{"number": s.number, "source": s.source, "page": s.page, "score": round(float(s.score), 4), "text": s.text} for s in run.sources]
    return {"chain": run.chain, "output": output, "sources": sources}


def create_app(chain: str | None = None, *, collection: str | None = None, model: str | None = None):
    """The app serving ``%%ask`` over ``collection`` (default: the settings'), and ``chain`` if named.

    ``model`` overrides the default generator for ``/ask``. Raises ``UsageError`` for an
    unknown chain, before anything is served.
    """
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import StreamingResponse

    from .. import chain as chain_mod
    from .. import config
    from ..errors import UsageError

    served_chain = chain_mod.get(chain) if chain else None  # UsageError for an unknown name
    default_collection = collection or config.settings().collection

    app = FastAPI(title=f"llm-magics: {chain}" if chain else "llm-magics: ask",
                  description="Grounded answers from llm-magics, with numbered sources.")

    def do_ask(req: AskRequest, stream_to: Callable[[str], None] | None = None):
        from .. import ask

        with _generation_lock:
            return ask(req.question, collection=req.collection or default_collection, k=req.k,
                       chain_type=req.chain_type, max_tokens=req.max_tokens, model=model,
                       format=req.format, memory=None, stream_to=stream_to)

    def do_run(req: RunRequest, stream_to: Callable[[str], None] | None = None):
        with _generation_lock:
            return served_chain.invoke(req.inputs, stream_to=stream_to)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "chain": chain, "collection": default_collection,
                "model": model or config.settings().model}

    @app.post("/ask")
    def post_ask(req: AskRequest) -> dict:
        try:
            return answer_json(do_ask(req))
        except UsageError as e:
            raise HTTPException(status_code=400, detail=str(e)) from None

    @app.post("/ask/stream")
    async def post_ask_stream(req: AskRequest):
        return StreamingResponse(_sse(lambda emit: answer_json(do_ask(req, emit)), "answer"),
                                 media_type="text/event-stream")

    if served_chain is not None:
        @app.post("/run")
        def post_run(req: RunRequest) -> dict:
            try:
                return run_json(do_run(req))
            except UsageError as e:
                raise HTTPException(status_code=400, detail=str(e)) from None

        @app.post("/run/stream")
        async def post_run_stream(req: RunRequest):
            return StreamingResponse(_sse(lambda emit: run_json(do_run(req, emit)), "output"),
                                     media_type="text/event-stream")

    return app


def sse_event(event: str, data: Any) -> str:
    """One server-sent event: ``event: NAME`` and a JSON ``data:`` line."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def _sse(work: Callable[[Callable[[str], None]], dict], final_event: str):
    """Run ``work(emit)`` in a thread; yield each emitted piece as a ``token`` event as it
    comes, then the result as ``final_event`` (or an ``error`` event)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    def emit(piece: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, ("token", {"text": piece}))

    def target() -> None:
        try:
            result = (final_event, work(emit))
        except Exception as e:  # the client gets the message; the server goes on
            result = ("error", {"error": str(e) or type(e).__name__})
        loop.call_soon_threadsafe(queue.put_nowait, result)
        loop.call_soon_threadsafe(queue.put_nowait, done)

    threading.Thread(target=target, daemon=True, name="llm-magics-sse").start()
    while True:
        item = await queue.get()
        if item is done:
            return
        yield sse_event(*item)
