"""LangChain bridge for llm-magics, both ways.

Our parts inside LangChain, so an existing chain runs on them unchanged:

- ``LLMMagicsRetriever(index=Index("docs"), k=4)``: a LangChain ``BaseRetriever`` over our index;
- ``LLMMagicsChatModel(model="smollm2-135m-instruct")``: a LangChain chat model on any of our
  backends (the local runtime, or an OpenAI-compatible server), streaming included;
- ``LLMMagicsEmbeddings(embedder="all-minilm-l6-v2")``: LangChain ``Embeddings`` on our embedder.

LangChain's parts inside llm-magics: any LangChain document loader reads sources for
``%ingest --loader langchain:ClassName`` (a class of ``langchain_community.document_loaders``,
or a dotted path ``package.module.Class``), with ``--loader-kwargs``-style options passed as
``loader_kwargs``. Its documents then go through our splitters, ids and manifest.

Installed as the distribution ``llm-magics-langchain`` (entry point ``llm_magics``).
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar, Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from llm_magics import UsageError, hookimpl
from llm_magics.extension import Options
from llm_magics.ingest.documents import Document
from llm_magics.ingest.loaders import Loader, SkipSource

__all__ = ["LLMMagicsRetriever", "LLMMagicsChatModel", "LLMMagicsEmbeddings", "LangChainLoader"]


# ---------------------------------------------------------------------------
# Our index as a LangChain retriever
# ---------------------------------------------------------------------------


class LLMMagicsRetriever(BaseRetriever):
    """A LangChain retriever over an llm-magics ``Index`` (or a collection name).

    Each hit becomes a LangChain ``Document`` whose metadata keeps ours (``source``,
    ``page``, ``start_index``) plus ``score`` and ``id``, in the index's own order.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    index: Any = Field(None, description="An llm_magics.Index; default: Index(collection).")
    collection: str | None = Field(None, description="Collection name when no index is given.")
    k: int = Field(4, ge=1, description="How many chunks to return.")

    def _index(self):
        if self.index is None:
            from llm_magics import Index

            self.index = Index(self.collection)
        return self.index

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        hits = self._index().search(query, k=self.k)
        return [LCDocument(page_content=h.text, metadata={**(h.metadata or {}), "score": float(h.score), "id": h.id}) for h in hits]


# ---------------------------------------------------------------------------
# Our models as a LangChain chat model and embeddings
# ---------------------------------------------------------------------------

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "user": "user", "assistant": "assistant"}


def _messages(messages: list[BaseMessage]) -> list[dict]:
    out = []
    for m in messages:
        role = _ROLES.get(m.type)
        if role is None:
            raise UsageError(f"LLMMagicsChatModel takes system, human and AI messages, not {m.type!r} messages.")
        content = m.content if isinstance(m.content, str) else "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in m.content)
        out.append({"role": role, "content": content})
    return out


class LLMMagicsChatModel(BaseChatModel):
    """A LangChain chat model on an llm-magics backend (``model`` as in ``%%ask --model``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    model: str | None = Field(None, description="Model name, path, or BACKEND:MODEL; default LLMMagics.model.")
    temperature: float = Field(0.0, ge=0.0, description="0 is greedy.")
    max_tokens: int = Field(256, ge=1, description="Most tokens in a reply.")
    seed: int | None = Field(None, description="Sampling seed.")

    @property
    def _llm_type(self) -> str:
        return "llm-magics"

    @property
    def _identifying_params(self) -> dict:
        return {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens}

    def _backend(self):
        from llm_magics import get_model

        return get_model(self.model)

    def _params(self, stop: list[str] | None):
        from llm_magics.backends.base import GenerationParams

        return GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens, seed=self.seed, stop=tuple(stop or ()))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        from llm_magics.backends.base import Usage

        usage = Usage()
        for piece in self._backend().stream(_messages(messages), self._params(stop), usage):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata={
            "input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}),
            generation_info={"finish_reason": usage.finish_reason})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text, info = [], {}
        for chunk in self._stream(messages, stop, run_manager, **kwargs):
            text.append(chunk.message.content)
            info.update(chunk.generation_info or {})
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="".join(text)), generation_info=info)])


class LLMMagicsEmbeddings(Embeddings):
    """LangChain ``Embeddings`` on an llm-magics embedder (default: all-MiniLM-L6-v2, local)."""

    def __init__(self, embedder: str | None = None):
        from llm_magics import get_embedder

        self.embedder = get_embedder(embedder)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(list(texts)).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()


# ---------------------------------------------------------------------------
# LangChain document loaders as an llm-magics loader
# ---------------------------------------------------------------------------


def _loader_class(target: str):
    if "." in target:
        module, _, name = target.rpartition(".")
    else:
        module, name = "langchain_community.document_loaders", target
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise UsageError(f"No LangChain loader {target!r} ({e}). Name a class of langchain_community.document_loaders "
                         "(e.g. langchain:PyPDFLoader) or a dotted path (langchain:package.module.Class).") from None
    if not callable(getattr(cls, "lazy_load", None)) and not callable(getattr(cls, "load", None)):
        raise UsageError(f"{target!r} is not a LangChain document loader (it has no load/lazy_load).")
    return cls


class LangChainLoader(Loader):
    """Any LangChain document loader: ``--loader langchain:ClassName``.

    The source is passed as the loader's first argument (a path or URL); ``loader_kwargs``
    go to its constructor. LangChain's 0-based ``page`` becomes our 1-based ``page``.
    """

    name = "langchain"
    description = "A LangChain document loader: --loader langchain:ClassName (langchain_community.document_loaders) or langchain:pkg.mod.Class."
    binary = True  # the LangChain loader decides what it can read
    takes_target: ClassVar[bool] = True

    class Options(Options):
        loader_kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the LangChain loader's constructor.")

    def load(self, source: str) -> Iterator[Document]:
        if not self.target:
            raise UsageError("Name the LangChain loader: --loader langchain:ClassName (for example langchain:PyPDFLoader).")
        cls = _loader_class(self.target)
        try:
            loader = cls(source, **self.options.loader_kwargs)
            docs = loader.lazy_load() if hasattr(loader, "lazy_load") else iter(loader.load())
            for d in docs:
                meta = {k: v for k, v in (d.metadata or {}).items() if isinstance(v, (str, int, float, bool))}
                if isinstance(meta.get("page"), int):
                    meta["page"] = meta["page"] + 1
                meta["source"] = source
                meta["loader"] = f"langchain:{self.target}"
                if d.page_content and d.page_content.strip():
                    yield Document(d.page_content, meta)
        except UsageError:
            raise
        except Exception as e:  # a LangChain loader's failure skips this source, with its reason
            raise SkipSource(f"LangChain {self.target} failed: {type(e).__name__}: {e}") from None


@hookimpl
def register_loaders(register):
    register(LangChainLoader)
