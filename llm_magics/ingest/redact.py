"""Personal data found and masked before anything is embedded or stored (``%ingest --redact``).

A ``Redactor`` is a list of detectors, each finding spans of one kind in a text:

    email        RFC-5322-ish addresses (local@domain.tld)
    phone        numbers that Google's libphonenumber (`phonenumbers`) parses and validates,
                 in international form or in the default region's national form
    iban         IBANs with a valid ISO 13616 check (python-stdnum)
    credit_card  13-19 digit card numbers that pass the Luhn check and have a known issuer
                 prefix (python-stdnum)

Each found span is replaced by ``[EMAIL]``, ``[PHONE]``, ``[IBAN]`` or ``[CREDIT_CARD]``, and
``RedactionReport`` counts what was masked, by kind. Names are not detected: the maintained
offline recognisers (presidio, spaCy) need a language model that PyPI does not distribute.

The ingest pipeline runs ``Redactor.redact`` on every document's text right after loading,
so the splitter, the embedder and the store only ever see the masked text. A plugin adds a
kind by appending a ``Detector`` to ``Redactor.detectors`` (or passing its own list).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

Span = tuple[int, int]

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# Candidate digit runs (spaces, dashes or dots inside), validated afterwards.
_CARD = re.compile(r"(?<![\w])(?:\d[ -]?){12,18}\d(?![\w])")
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![\w])")


@dataclass
class Detector:
    """One kind of personal data: ``find(text)`` yields (start, end) spans."""

    kind: str
    find: Callable[[str], Iterable[Span]]

    @property
    def mask(self) -> str:
        return f"[{self.kind.upper()}]"


def find_emails(text: str) -> Iterable[Span]:
    return (m.span() for m in _EMAIL.finditer(text))


def find_credit_cards(text: str) -> Iterable[Span]:
    from stdnum import luhn
    from stdnum.exceptions import ValidationError

    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if not 13 <= len(digits) <= 19 or not _CARD_PREFIX.match(digits):
            continue
        try:
            luhn.validate(digits)
        except ValidationError:
            continue
        yield m.span()


# Issuer prefixes (IIN ranges) of the common networks: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay.
_CARD_PREFIX = re.compile(r"^(4|5[1-5]|2[2-7]|3[47]|6011|65|64[4-9]|35|30[0-5]|36|38|62)")


def find_ibans(text: str) -> Iterable[Span]:
    from stdnum import iban
    from stdnum.exceptions import ValidationError

    for m in _IBAN.finditer(text):
        candidate = m.group()
        # the regex may run on into a following word: shrink from the right until it validates
        for end in range(len(candidate), 14, -1):
            try:
                iban.validate(candidate[:end])
            except ValidationError:
                continue
            yield m.start(), m.start() + len(candidate[:end].rstrip())
            break


def phone_finder(region: str = "US") -> Callable[[str], Iterable[Span]]:
    """Phone numbers valid for their country; national ones read as ``region``'s."""

    def find(text: str) -> Iterable[Span]:
        import phonenumbers

        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            yield match.start, match.end

    return find


def default_detectors(region: str = "US") -> list[Detector]:
    return [
        Detector("email", find_emails),
        Detector("iban", find_ibans),
        Detector("credit_card", find_credit_cards),
        Detector("phone", phone_finder(region)),
    ]


@dataclass
class RedactionReport:
    """What was masked, by kind, over every document of one ingest run."""

    counts: Counter = field(default_factory=Counter)
    documents: int = 0  # documents with at least one mask

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.total:
            return "Redacted: nothing found (e-mail addresses, phone numbers, IBANs, credit-card numbers)."
        kinds = ", ".join(f"{n} {kind.replace('_', '-')}{'s' if n != 1 else ''}" for kind, n in sorted(self.counts.items()))
        return f"Redacted {self.total} item(s) in {self.documents} document(s): {kinds}."


class Redactor:
    """Masks every span its detectors find; earlier detectors win where spans overlap."""

    def __init__(self, detectors: list[Detector] | None = None, region: str = "US"):
        self.detectors = list(detectors) if detectors is not None else default_detectors(region)
        self.report = RedactionReport()

    def find(self, text: str) -> list[tuple[int, int, Detector]]:
        """Non-overlapping (start, end, detector) spans, in text order."""
        taken: list[tuple[int, int, Detector]] = []
        for detector in self.detectors:
            for start, end in detector.find(text):
                if all(end <= a or start >= b for a, b, _ in taken):
                    taken.append((start, end, detector))
        return sorted(taken, key=lambda s: s[0])

    def redact(self, text: str) -> str:
        """text with each found span replaced by its mask; counts go to ``self.report``."""
        spans = self.find(text)
        if not spans:
            return text
        out, at = [], 0
        for start, end, detector in spans:
            out.append(text[at:start])
            out.append(detector.mask)
            self.report.counts[detector.kind] += 1
            at = end
        out.append(text[at:])
        self.report.documents += 1
        return "".join(out)
