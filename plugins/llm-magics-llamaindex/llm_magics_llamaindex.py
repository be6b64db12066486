"""LlamaIndex bridge for llm-magics, both ways.

Our parts inside LlamaIndex:

- ``LLMMagicsRetriever(index=Index("docs"), k=4)``: a LlamaIndex ``BaseRetriever``, so
  ``RetrieverQueryEngine.from_args(retriever, llm=...)`` answers over our collection;
- ``LLMMagicsLLM(model="smollm2-135m-instruct")``: a LlamaIndex LLM on any of our backends
  (chat messages go to the model's own chat template; streaming included);
- ``LLMMagicsEmbedding(embedder="all-minilm-l6-v2")``: a LlamaIndex embedding model.

LlamaIndex's data connectors inside llm-magics: ``%ingest SOURCE --loader
llamaindex:ReaderClass`` reads the source with a LlamaIndex reader
(``SimpleDirectoryReader`` from llama-index-core, or a dotted path such as
``llama_index.readers.file.PDFReader`` or ``llama_index.readers.database.DatabaseReader``),
then our splitters, ids and manifest take over.

Installed as the distribution ``llm-magics-llamaindex`` (entry point ``llm_magics``).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import Field, PrivateAttr

from llm_magics import UsageError, hookimpl
from llm_magics.extension import Options
from llm_magics.ingest.documents import Document
from llm_magics.ingest.loaders import Loader, SkipSource

__all__ = ["LLMMagicsRetriever", "LLMMagicsLLM", "LLMMagicsEmbedding", "LlamaIndexLoader"]


# ---------------------------------------------------------------------------
# Our index as a LlamaIndex retriever
# ---------------------------------------------------------------------------


class LLMMagicsRetriever(BaseRetriever):
    """A LlamaIndex retriever over an llm-magics ``Index`` (or a collection name)."""

    def __init__(self, index=None, collection: str | None = None, k: int = 4, **kwargs: Any):
        if k < 1:
            raise UsageError(f"k={k}: retrieve at least one chunk.")
        super().__init__(**kwargs)
        self._our_index = index
        self._collection = collection
        self._k = k

    def _index(self):
        if self._our_index is None:
            from llm_magics import Index

            self._our_index = Index(self._collection)
        return self._our_index

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._index().search(query_bundle.query_str, k=self._k)
        return [NodeWithScore(node=TextNode(text=h.text, id_=h.id or None, metadata=dict(h.metadata or {})), score=float(h.score)) for h in hits]


# ---------------------------------------------------------------------------
# Our models as LlamaIndex's LLM and embedding
# ---------------------------------------------------------------------------


class LLMMagicsLLM(CustomLLM):
    """A LlamaIndex LLM on an llm-magics backend (``model`` as in ``%%ask --model``)."""

    model: str | None = Field(None, description="Model name, path, or BACKEND:MODEL; default LLMMagics.model.")
    temperature: float = Field(0.0, ge=0.0, description="0 is greedy.")
    max_tokens: int = Field(256, ge=1, description="Most tokens in a reply.")
    _backend: Any = PrivateAttr(None)

    def backend(self):
        if self._backend is None:
            from llm_magics import get_model

            self._backend = get_model(self.model)
        return self._backend

    @property
    def metadata(self) -> LLMMetadata:
        b = self.backend()
        return LLMMetadata(context_window=b.context_window, num_output=self.max_tokens, is_chat_model=True, model_name=b.model_id)

    def _stream(self, messages: list[dict]) -> Iterator[str]:
        from llm_magics.backends.base import GenerationParams, Usage

        params = GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens)
        yield from self.backend().stream(messages, params, Usage())

    @staticmethod
    def _dicts(messages: Sequence[ChatMessage]) -> list[dict]:
        roles = {"user": "user", "assistant": "assistant", "system": "system"}
        return [{"role": roles.get(str(getattr(m.role, "value", m.role)), "user"), "content": m.content or ""} for m in messages]

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="".join(self._stream([{"role": "user", "content": prompt}])))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = ""
        for piece in self._stream([{"role": "user", "content": prompt}]):
            text += piece
            yield CompletionResponse(text=text, delta=piece)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        text = "".join(self._stream(self._dicts(messages)))
        return ChatResponse(message=ChatMessage(role="assistant", content=text))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def gen():
            text = ""
            for piece in self._stream(self._dicts(messages)):
                text += piece
                yield ChatResponse(message=ChatMessage(role="assistant", content=text), delta=piece)

        return gen()


class LLMMagicsEmbedding(BaseEmbedding):
    """A LlamaIndex embedding model on an llm-magics embedder (default all-MiniLM-L6-v2)."""

    embedder_name: str | None = Field(None, description="Embedder name or path; default LLMMagics.embedder.")
    _embedder: Any = PrivateAttr(None)

    def __init__(self, embedder: str | None = None, **kwargs: Any):
        super().__init__(embedder_name=embedder, model_name=embedder or "llm-magics", **kwargs)

    def _get(self):
        if self._embedder is None:
            from llm_magics import get_embedder

            self._embedder = get_embedder(self.embedder_name)
        return self._embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get().embed_query(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get().embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._get().embed(list(texts)).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)


# ---------------------------------------------------------------------------
# LlamaIndex readers as an llm-magics loader
# ---------------------------------------------------------------------------

#: Where a reader takes the source, in order of preference: load_data's, then the constructor's.
_SOURCE_ARGS = ("file", "file_path", "input_file", "path", "uri", "url", "urls", "input_files")


def _reader_class(target: str):
    if "." in target:
        module, _, name = target.rpartition(".")
    else:
        module, name = "llama_index.core", target
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise UsageError(f"No LlamaIndex reader {target!r} ({e}). Use llamaindex:SimpleDirectoryReader or a dotted path "
                         "such as llamaindex:llama_index.readers.file.PDFReader (pip install llama-index-readers-file).") from None


def _source_arg(fn, source: str) -> dict:
    params = inspect.signature(fn).parameters
    for name in _SOURCE_ARGS:
        if name in params:
            value: Any = [source] if name in ("urls", "input_files") else source
            if name in ("file", "file_path", "input_file", "path") and "://" not in source:
                value = Path(source)
            return {name: value}
    return {}


class LlamaIndexLoader(Loader):
    """Any LlamaIndex reader: ``--loader llamaindex:ReaderClass``.

    The source goes where the reader takes it (``load_data(file=...)``, the constructor's
    ``uri=``/``input_files=``, ...); ``reader_kwargs`` go to the constructor and
    ``load_kwargs`` to ``load_data`` (``query=`` for ``DatabaseReader``).
    """

    name = "llamaindex"
    description = "A LlamaIndex reader: --loader llamaindex:SimpleDirectoryReader, or a dotted path to a reader class."
    binary = True
    takes_target: ClassVar[bool] = True
    schemes = ()

    class Options(Options):
        reader_kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the reader's constructor.")
        load_kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the reader's load_data.")

    def load(self, source: str) -> Iterator[Document]:
        target = self.target or "SimpleDirectoryReader"
        cls = _reader_class(target)
        opts = self.options
        try:
            init_args = {} if _source_arg(cls.load_data, source) else _source_arg(cls.__init__, source)
            reader = cls(**init_args, **opts.reader_kwargs)
            load_args = _source_arg(reader.load_data, source) if not init_args else {}
            docs = reader.load_data(**load_args, **opts.load_kwargs)
        except UsageError:
            raise
        except Exception as e:
            raise SkipSource(f"LlamaIndex {target} failed: {type(e).__name__}: {e}") from None
        for d in docs:
            meta = {k: v for k, v in (d.metadata or {}).items() if isinstance(v, (str, int, float, bool))}
            if isinstance(meta.get("page_label"), str) and meta["page_label"].isdigit():
                meta["page"] = int(meta["page_label"])
            meta["source"] = source
            meta["loader"] = f"llamaindex:{target}"
            text = d.get_content() if hasattr(d, "get_content") else d.text
            if text and text.strip():
                yield Document(text, meta)


@hookimpl
def register_loaders(register):
    register(LlamaIndexLoader)
