"""Personal data masked before embedding: the detectors on their own (real phonenumbers / python-stdnum)."""

from __future__ import annotations

from llm_magics.ingest.redact import Redactor

TEXT = """Contact Jane at jane.doe@example.org or +44 20 7946 0958 (office), or 020 7946 0018.
Pay to GB82 WEST 1234 5698 7654 32 or by card 4111 1111 1111 1111 (expires 12/27).
Order number 1234 5678 9012 3456 is not a card (Luhn fails). Call +1 (415) 555-2671.
The year 2024, pi 3.14159 and version 1.2.3 stay."""


def test_each_kind_is_masked_and_counted():
    r = Redactor(region="GB")
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
