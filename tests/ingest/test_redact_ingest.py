"""``%ingest --redact`` with the real embedder and a real Chroma: nothing personal is stored or embedded."""

from __future__ import annotations

import chromadb
import numpy as np
import pytest

from llm_magics import config
from llm_magics.ingest.documents import embedding_text
from llm_magics.testing import assert_same_embeddings

SECRETS = ["jane.doe@example.org", "+1 415 555 2671", "GB82 WEST 1234 5698 7654 32", "4111 1111 1111 1111"]
TEXT = f"""# Payroll contacts

Write to {SECRETS[0]} or call {SECRETS[1]} about salaries.
Salaries are paid to {SECRETS[2]}; the company card is {SECRETS[3]}.
The payroll office is open on weekdays from nine to five.
"""


@pytest.mark.slow
def test_ingest_redact_masks_before_embedding_and_storing(ip, minilm, tmp_path, capsys):
    (tmp_path / "payroll.md").write_text(TEXT, encoding="utf-8")
    ip.run_cell("%config LLMMagics.progress = False").raise_error()
    index = ip.run_cell(f"%ingest {tmp_path / 'payroll.md'} --redact --collection payroll").result
    out = capsys.readouterr().out
    assert "Redacted 4 item(s) before embedding: 1 credit card, 1 email, 1 iban, 1 phone." in out
    assert index.last_report.redacted == {"email": 1, "phone": 1, "iban": 1, "credit_card": 1}

    # Read Chroma directly, not through our code: documents, metadata and vectors.
    client = chromadb.PersistentClient(path=config.settings().store_path)
    col = client.get_collection(index.store.chroma_name)
    stored = col.get(include=["documents", "metadatas", "embeddings"])
    text = "\n".join(stored["documents"]) + repr(stored["metadatas"])
    for secret in SECRETS + ["555 2671", "1234 5698", "jane.doe"]:
        assert secret not in text
    assert "[EMAIL]" in text and "[PHONE]" in text and "[IBAN]" in text and "[CREDIT_CARD]" in text
    # each stored vector is the embedding of the masked chunk (under its heading), not of the original text
    vectors = np.asarray(stored["embeddings"], dtype=np.float32)
    expected = minilm.embed([embedding_text(d, m) for d, m in zip(stored["documents"], stored["metadatas"])])
    assert_same_embeddings(vectors, expected)
    unmasked = minilm.embed([TEXT.split("\n\n", 1)[1]])[0]
    assert all(float(v @ unmasked) < 0.999 for v in vectors)

    # a second run without --redact is another version of the file: it replaces the masked chunks
    again = ip.run_cell(f"%ingest {tmp_path / 'payroll.md'} --collection payroll").result
    assert again.last_report.redacted is None and again.last_report.files_read == 1
