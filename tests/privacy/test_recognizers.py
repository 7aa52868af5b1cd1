"""The structured recognizers: valid identifiers are found with their exact spans, a one-digit
typo in a checksummed identifier is never reported as that identifier."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agogosml.privacy.recognizers import (
    RECOGNIZERS,
    StructuredAnalyzer,
    entities_in,
    recognize_value,
)
from tests.privacy import ids

ANALYZER = StructuredAnalyzer()
RNG_SEEDS = range(40)


def found(text: str) -> list[tuple[str, str]]:
    return entities_in(text, ANALYZER.analyze(text))


@pytest.mark.parametrize("country", sorted(ids.BBAN_LAYOUTS))
def test_valid_ibans_are_found_and_typos_are_not(country: str) -> None:
    rng = random.Random(country)
    for _ in RNG_SEEDS:
        for spaced in (True, False):
            value = ids.iban(rng, country, spaced)
            assert found(f"Pay to {value}, thanks") == [("IBAN", value)]
            assert recognize_value(ids.typo(rng, value)) != "IBAN"


def test_an_iban_of_the_wrong_length_for_its_country_is_not_an_iban() -> None:
    valid = ids.iban(random.Random(3), "NL", spaced=False)
    assert recognize_value(valid) == "IBAN"
    assert recognize_value(valid + "7") != "IBAN"
    assert recognize_value("XX" + valid[2:]) != "IBAN"


@pytest.mark.parametrize("brand", sorted(ids.CARD_PREFIXES))
@pytest.mark.parametrize("separator", [" ", "-", ""])
def test_valid_cards_are_found_and_typos_are_not(brand: str, separator: str) -> None:
    rng = random.Random(brand + separator)
    for _ in RNG_SEEDS:
        value = ids.card(rng, brand, separator)
        assert found(f"card {value} expires 09/27") == [("CREDIT_CARD", value)]
        assert recognize_value(ids.typo(rng, value)) != "CREDIT_CARD"


def test_a_luhn_valid_number_with_no_known_issuer_is_not_a_card() -> None:
    body = "9" + "123456789012345"[:14]
    assert recognize_value(body + ids.luhn_digit(body)) != "CREDIT_CARD"


def test_ssns_follow_the_format_rules() -> None:
    rng = random.Random(5)
    for _ in RNG_SEEDS:
        value = ids.ssn(rng)
        assert found(f"SSN {value}.") == [("US_SSN", value)]
    for invalid in ("000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000"):
        assert recognize_value(invalid) != "US_SSN", invalid
    assert "US_SSN" not in {e for e, _ in found("ranges 123-45-6789-1 and 12-345-6789")}


def test_bsns_pass_the_eleven_test_and_typos_do_not() -> None:
    rng = random.Random(7)
    for _ in RNG_SEEDS:
        value = ids.bsn(rng)
        assert found(f"BSN {value}") == [("NL_BSN", value)]
        dotted = f"{value[:4]}.{value[4:6]}.{value[6:]}"
        assert found(f"BSN {dotted}") == [("NL_BSN", dotted)]
        assert recognize_value(ids.typo(rng, value)) != "NL_BSN"


@pytest.mark.parametrize(
    "email",
    ["john.doe@example.com", "a+tag@sub.example.co.uk", "o'brien@mail.ie", "X_Y-z@host-1.io"],
)
def test_emails(email: str) -> None:
    assert found(f"Write to <{email}> today") == [("EMAIL", email)]


@pytest.mark.parametrize("text", ["user@localhost", "@handle", "a@b", "name@domain."])
def test_not_emails(text: str) -> None:
    assert [e for e, _ in found(text)] == []


@pytest.mark.parametrize(
    "phone",
    ["+31 6 12345678", "+1 (415) 555-0123", "+442079460958", "+4917998904214",
     "(020) 123 4567", "415-555-0123", "06-12345678", "030 123 45 67", "0612345678"],
)  # fmt: skip
def test_phones(phone: str) -> None:
    assert found(f"call {phone} after 5") == [("PHONE", phone)]


@pytest.mark.parametrize(
    "text", ["on 2024-01-15", "order 1234567", "total 1.234.567", "v1.2.3", "call 555-012"]
)
def test_not_phones(text: str) -> None:
    assert found(text) == []


def test_several_entities_in_one_sentence_each_keep_their_type() -> None:
    rng = random.Random(11)
    card, iban, ssn = ids.card(rng), ids.iban(rng, "DE"), ids.ssn(rng)
    text = f"Ann (ann@x.org, +31 20 555 0101) paid {card} from {iban}; SSN {ssn}."
    assert found(text) == [
        ("EMAIL", "ann@x.org"),
        ("PHONE", "+31 20 555 0101"),
        ("CREDIT_CARD", card),
        ("IBAN", iban),
        ("US_SSN", ssn),
    ]


def test_restricting_entities() -> None:
    analyzer = StructuredAnalyzer(entities=["EMAIL"])
    assert [s.entity for s in analyzer.analyze("a@b.io +31 6 12345678")] == ["EMAIL"]
    with pytest.raises(ValueError, match="NAME"):
        StructuredAnalyzer(entities=["NAME"])


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_ordered_non_overlapping_spans_inside_it(text: str) -> None:
    spans = ANALYZER.analyze(text)
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
        assert span.entity in RECOGNIZERS
    for before, after in itertools.pairwise(spans):
        assert before.end <= after.start


def test_hostile_long_inputs_stay_fast() -> None:
    # Patterns with nested ambiguous repetition would take exponential or quadratic time here.
    for text in ("a" * 50_000 + "@", "1 " * 20_000, "1" * 50_000, "a." * 20_000 + "@x"):
        ANALYZER.analyze(text)
