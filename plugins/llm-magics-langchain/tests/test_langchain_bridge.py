"""The LangChain bridge with the real langchain-core/-community, our real index and models."""

from __future__ import annotations

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from llm_magics import UsageError
from llm_magics.testing import assert_same_embeddings


def test_plugin_is_listed_under_its_distribution():
    from llm_magics import catalog, plugins, registry

    assert registry.entries("loader")["langchain"].plugin == "langchain"
    assert "llm-magics-langchain" in plugins.info["langchain"].source
    assert any(row[0] == "langchain" and "llm-magics-langchain" in row[1] for row in catalog.listing("plugins"))


def test_retriever_returns_the_same_hits_as_our_api(demo_index, demo_questions):
    from llm_magics_langchain import LLMMagicsRetriever

    retriever = LLMMagicsRetriever(index=demo_index, k=3)
    for question, _, _ in demo_questions:
        ours = demo_index.search(question, k=3)
        theirs = retriever.invoke(question)
        assert [d.metadata["id"] for d in theirs] == [h.id for h in ours]
        assert [d.page_content for d in theirs] == [h.text for h in ours]
        assert theirs[0].metadata["source"] == ours[0].metadata["source"]


def test_embeddings_match_our_embedder(demo_index):
    import numpy as np

    from llm_magics_langchain import LLMMagicsEmbeddings

    emb = LLMMagicsEmbeddings()
    docs = emb.embed_documents(["The cat sat on the mat.", "Kestrel Lab badges"])
    q = emb.embed_query("The cat sat on the mat.")
    assert len(docs) == 2 and len(docs[0]) == 384
    assert_same_embeddings(docs[0], q)
    assert float(np.dot(docs[1], q)) < 0.5  # another text is far away
    assert emb.embed_documents([]) == []


def test_chat_model_streams_through_langchain_callbacks():
    from langchain_core.callbacks import BaseCallbackHandler

    from llm_magics_langchain import LLMMagicsChatModel

    class Collect(BaseCallbackHandler):
        def __init__(self):
            self.tokens = []

        def on_llm_new_token(self, token, **kwargs):
            self.tokens.append(token)

    cb = Collect()
    llm = LLMMagicsChatModel(max_tokens=12)
    reply = llm.invoke([("system", "You are terse."), ("human", "Name a colour.")], config={"callbacks": [cb]})
    assert reply.content.strip() and "".join(cb.tokens) == reply.content
    pieces = [c.content for c in llm.stream("Say hello.")]
    assert len(pieces) >= 2 and "".join(pieces).strip()


def test_a_retrieval_qa_chain_answers_the_demo_questions_with_sources(demo_index, demo_questions, strong_model):
    """The usual LangChain RetrievalQA `stuff` shape (LCEL), built on our retriever and model."""
    from llm_magics_langchain import LLMMagicsChatModel, LLMMagicsRetriever

    retriever = LLMMagicsRetriever(index=demo_index, k=3)
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Answer the question from the context only, in one short sentence."),
        ("human", "Context:\n{context}\n\nQuestion: {question}"),
    ])
    llm = LLMMagicsChatModel(model=strong_model, max_tokens=48)

    def stuff(docs):
        return "\n\n".join(d.page_content for d in docs)

    chain = {"docs": retriever, "question": RunnablePassthrough()} | RunnablePassthrough.assign(
        answer=(lambda x: {"context": stuff(x["docs"]), "question": x["question"]}) | prompt | llm | StrOutputParser())
    correct, replies = 0, []
    for question, fact, source in demo_questions:
        out = chain.invoke(question)
        assert out["answer"].strip()
        assert any(d.metadata["source"].endswith(source) for d in out["docs"]), (question, [d.metadata["source"] for d in out["docs"]])
        correct += fact.lower() in out["answer"].lower()
        replies.append(out["answer"])
    assert correct == len(demo_questions), replies


def test_langchain_loader_in_ingest(demo_index, tmp_path, demo_data):
    from llm_magics import Index

    index = Index("lc-loaded")
    report = index.add([str(demo_data / "safety.pdf")], loader="langchain:PyPDFLoader")
    assert report.chunks_added > 0, report
    hits = index.search("laser safety training", k=2)
    assert hits and hits[0].metadata["loader"] == "langchain:PyPDFLoader"
    assert hits[0].metadata["page"] >= 1 and hits[0].metadata["source"].endswith("safety.pdf")
    again = index.add([str(demo_data / "safety.pdf")], loader="langchain:PyPDFLoader")
    assert again.chunks_added == 0  # our ids and manifest: re-ingesting adds nothing
    text = tmp_path / "notes.txt"
    text.write_text("The pump room key hangs behind the blue door.\n", encoding="utf-8")
    index.add([str(text)], loader="langchain:TextLoader", loader_kwargs={"encoding": "utf-8"})
    assert "blue door" in index.search("pump room key", k=1)[0].text


def test_langchain_loader_errors(demo_index, tmp_path, demo_data):
    from llm_magics import Index

    index = Index("lc-errors")
    with pytest.raises(UsageError, match="No LangChain loader 'NoSuchLoader'"):
        index.add([str(demo_data / "faq.txt")], loader="langchain:NoSuchLoader")
    with pytest.raises(UsageError, match="loader_kwargs"):
        index.add([str(demo_data / "faq.txt")], loader="langchain:TextLoader", bogus=1)
    report = index.add([str(tmp_path / "missing.pdf")], loader="langchain:PyPDFLoader")
    assert report.chunks_added == 0 and report.skipped
