"""Structured PII recognizers: regular expressions for candidates, then validation.

Each recognizer returns `Span`s (start, end, entity, score) over a text. Identifiers with a
check digit are reported only when the check passes: an IBAN failing mod-97, a card number
failing Luhn or with no known issuer prefix, a BSN failing the 11-test are never reported as
that identifier. Their digits may still match a less certain recognizer on its own terms:
the digit groups of a bad IBAN or a 13-15 digit bad card can read as a PHONE, a bad bare BSN
as a bare US_SSN. Scores say how sure the format alone makes us:

    EMAIL 0.9 | IBAN 0.95 | CREDIT_CARD 0.95 | US_SSN 0.85 with separators, 0.3 bare
    NL_BSN 0.6 bare, 0.7 dotted | PHONE 0.75 with +country, 0.65 with (area),
    0.55 national with separators, 0.4 bare of 10+ digits

When spans overlap, `resolve` keeps the higher score, then the longer span: a 9-digit run
passing the 11-test is a BSN rather than a bare SSN, a Luhn-valid card is never a phone.
Patterns are anchored on word boundaries by look-behind and avoid nested ambiguous
repetition, so a hostile text costs linear time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    entity: str
    score: float


Recognizer = Callable[[str], list[Span]]

_EMAIL = re.compile(
    r"(?<![\w.+'-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)


def find_emails(text: str) -> list[Span]:
    if "@" not in text:
        return []
    return [Span(m.start(), m.end(), "EMAIL", 0.9) for m in _EMAIL.finditer(text)]


# IBAN lengths per country (the SWIFT registry), for the countries a payload most likely holds.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21,
    "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GI": 23, "GL": 18, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26,
    "IT": 27, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27,
    "ME": 22, "MK": 19, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24,
    "TR": 26, "UA": 29,
}  # fmt: skip

_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")


def iban_valid(compact: str) -> bool:
    """Country length and the ISO 7064 mod-97 check of an IBAN without spaces."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1


def find_ibans(text: str) -> list[Span]:
    spans = []
    for match in _IBAN.finditer(text):
        candidate = match.group()
        length = IBAN_LENGTHS.get(candidate[:2])
        if length is None:
            continue
        # The pattern may run into a following word; cut at the country's length.
        taken = end = 0
        while end < len(candidate) and taken < length:
            taken += candidate[end] != " "
            end += 1
        after = match.start() + end
        if taken == length and (after >= len(text) or not text[after].isalnum()):
            compact = candidate[:end].replace(" ", "")
            if iban_valid(compact):
                spans.append(Span(match.start(), after, "IBAN", 0.95))
    return spans


_CARD = re.compile(r"(?<![\d+])\d(?:[ -]?\d){12,}(?!\d)")
_CARD_PREFIXES: tuple[tuple[str, str, frozenset[int]], ...] = (
    # (lowest prefix, highest prefix, lengths): Visa, Mastercard, Amex, Discover, JCB, Diners,
    # UnionPay, Maestro.
    ("4", "4", frozenset({13, 16, 19})),
    ("51", "55", frozenset({16})),
    ("2221", "2720", frozenset({16})),
    ("34", "34", frozenset({15})),
    ("37", "37", frozenset({15})),
    ("6011", "6011", frozenset({16, 17, 18, 19})),
    ("644", "649", frozenset({16, 17, 18, 19})),
    ("65", "65", frozenset({16, 17, 18, 19})),
    ("3528", "3589", frozenset({16, 17, 18, 19})),
    ("300", "305", frozenset({14, 15, 16, 17, 18, 19})),
    ("36", "36", frozenset({14, 15, 16, 17, 18, 19})),
    ("38", "39", frozenset({14, 15, 16, 17, 18, 19})),
    ("62", "62", frozenset({16, 17, 18, 19})),
    ("50", "50", frozenset({13, 14, 15, 16, 17, 18, 19})),
    ("56", "58", frozenset({13, 14, 15, 16, 17, 18, 19})),
    ("67", "67", frozenset({13, 14, 15, 16, 17, 18, 19})),
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        value = ord(ch) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_issuer_known(digits: str) -> bool:
    for low, high, lengths in _CARD_PREFIXES:
        if len(digits) in lengths and low <= digits[: len(low)] <= high:
            return True
    return False


def find_cards(text: str) -> list[Span]:
    spans = []
    for match in _CARD.finditer(text):
        spans.extend(_cards_in(match.group(), match.start()))
    return spans


_DIGIT_GROUP = re.compile(r"\d+")


def _cards_in(candidate: str, offset: int) -> list[Span]:
    """Cards among a run of digit groups: the run may join a card to a neighbouring number
    ("4111 1111 1111 1111 2"), so windows of whole groups are tried, longest first."""
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(candidate)]
    spans, first = [], 0
    while first < len(groups):
        # At most 19 digits, so at most 19 groups per window: linear in the run's length.
        limit, count = first, 0
        while limit < len(groups) and count + groups[limit][1] - groups[limit][0] <= 19:
            count += groups[limit][1] - groups[limit][0]
            limit += 1
        for last in range(limit - 1, first - 1, -1):
            start, end = groups[first][0], groups[last][1]
            window = candidate[start:end]
            if "-" in window and " " in window:
                continue  # mixed separators: a list of numbers, not one card
            digits = window.replace(" ", "").replace("-", "")
            if 13 <= len(digits) <= 19 and card_issuer_known(digits) and luhn_valid(digits):
                spans.append(Span(offset + start, offset + end, "CREDIT_CARD", 0.95))
                first = last
                break
        first += 1
    return spans


_SSN = re.compile(r"(?<![\d-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\d]|-\d)")


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """The SSA's format rules: no area 000, 666 or 9xx, no group 00, no serial 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def find_ssns(text: str) -> list[Span]:
    return [
        Span(m.start(), m.end(), "US_SSN", 0.85 if m.group(2) else 0.3)
        for m in _SSN.finditer(text)
        if ssn_valid(m.group(1), m.group(3), m.group(4))
    ]


_BSN = re.compile(r"(?<![\d.-])(?:\d{9}|\d{4}\.\d{2}\.\d{3})(?![\d]|[.-]\d)")


def bsn_valid(digits: str) -> bool:
    """The Dutch citizen service number's 11-test: 9d1 + 8d2 + ... + 2d8 - d9 = 0 mod 11."""
    if len(digits) != 9 or digits == "000000000":
        return False
    total = sum(int(d) * weight for d, weight in zip(digits[:8], range(9, 1, -1), strict=True))
    return (total - int(digits[8])) % 11 == 0


def find_bsns(text: str) -> list[Span]:
    return [
        Span(m.start(), m.end(), "NL_BSN", 0.7 if "." in m.group() else 0.6)
        for m in _BSN.finditer(text)
        if bsn_valid(m.group().replace(".", ""))
    ]


_PHONE = re.compile(
    r"(?<![\w+])(?P<cc>\+\d{1,3}[ .-]?)?(?P<area>\(\d{1,5}\)[ .-]?)?\d+(?:[ .-]\d+){0,6}(?![\w])"
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[-./]\d{2}[-./]\d{4}")


def find_phones(text: str) -> list[Span]:
    spans = []
    for match in _PHONE.finditer(text):
        candidate = match.group()
        digits = sum(ch.isdigit() for ch in candidate)
        if not 7 <= digits <= 15 or _ISO_DATE.fullmatch(candidate):
            continue
        separated = any(ch in " .-" for ch in candidate)
        if match.group("cc"):
            score = 0.75
        elif match.group("area"):
            score = 0.65
        elif separated and "." in candidate and "-" not in candidate and " " not in candidate:
            continue  # 1.234.567: an amount with thousands separators
        elif separated:
            score = 0.55
        elif digits >= 10:
            score = 0.4
        else:
            continue  # a bare short number is an order id or an amount, not a phone
        spans.append(Span(match.start(), match.end(), "PHONE", score))
    return spans


RECOGNIZERS: dict[str, Recognizer] = {
    "EMAIL": find_emails,
    "PHONE": find_phones,
    "IBAN": find_ibans,
    "CREDIT_CARD": find_cards,
    "US_SSN": find_ssns,
    "NL_BSN": find_bsns,
}
NUMERIC_ENTITIES = frozenset({"PHONE", "IBAN", "CREDIT_CARD", "US_SSN", "NL_BSN"})


def resolve(spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans in text order: the higher score wins, then the longer span."""
    chosen: list[Span] = []
    for span in sorted(spans, key=lambda s: (-s.score, s.start - s.end, s.start)):
        if all(span.end <= kept.start or span.start >= kept.end for kept in chosen):
            chosen.append(span)
    chosen.sort(key=lambda s: s.start)
    return chosen


def cover(text: str, spans: Iterable[Span]) -> list[Span]:
    """What a scan replaces: `resolve`'s spans, plus the parts of the spans they beat that
    stick out of them (trimmed of spaces, if they hold a letter or digit), each labelled as
    its own span. Non-overlapping, in text order. Where analyzers disagree on an entity's
    edges (a model reading a name from the "6" of "+31 6 12345678"), none of it stays."""
    chosen: list[Span] = []
    for span in sorted(spans, key=lambda s: (-s.score, s.start - s.end, s.start)):
        pieces = [(span.start, span.end)]
        for kept in chosen:
            pieces = [
                piece
                for start, end in pieces
                for piece in ((start, min(end, kept.start)), (max(start, kept.end), end))
                if piece[0] < piece[1]
            ]
        for start, end in pieces:
            if (start, end) != (span.start, span.end):
                part = text[start:end]
                if not any(ch.isalnum() for ch in part):
                    continue
                start += len(part) - len(part.lstrip())
                end -= len(part) - len(part.rstrip())
            chosen.append(Span(start, end, span.entity, span.score))
    return sorted(chosen, key=lambda s: s.start)


class StructuredAnalyzer:
    """The recognizers above as one analyzer; `entities` restricts which ones run."""

    def __init__(self, entities: Iterable[str] | None = None, min_score: float = 0.0) -> None:
        names = list(RECOGNIZERS) if entities is None else list(entities)
        unknown = set(names) - set(RECOGNIZERS)
        if unknown:
            raise ValueError(f"unknown entities {sorted(unknown)}; known: {sorted(RECOGNIZERS)}")
        self._recognizers = [(name, RECOGNIZERS[name]) for name in names]
        self._min_score = min_score

    @property
    def entities(self) -> frozenset[str]:
        return frozenset(name for name, _ in self._recognizers)

    def analyze(self, text: str) -> list[Span]:
        has_digit = any(ch.isdigit() for ch in text) if len(text) < 64 else _has_digit(text)
        spans: list[Span] = []
        for name, recognize in self._recognizers:
            if name in NUMERIC_ENTITIES and not has_digit:
                continue
            spans.extend(s for s in recognize(text) if s.score >= self._min_score)
        return resolve(spans)


_DIGIT = re.compile(r"\d")


def _has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


def recognize_value(value: str, analyzer: StructuredAnalyzer | None = None) -> str | None:
    """The entity a whole field value is (surrounding spaces aside), or None."""
    stripped = value.strip()
    for span in (analyzer or _DEFAULT).analyze(stripped):
        if span.start == 0 and span.end == len(stripped):
            return span.entity
    return None


def entities_in(text: str, spans: Sequence[Span]) -> list[tuple[str, str]]:
    """(entity, matched text) pairs, for reports and tests."""
    return [(s.entity, text[s.start : s.end]) for s in spans]


_DEFAULT = StructuredAnalyzer()
