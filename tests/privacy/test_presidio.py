"""Free text through Presidio and spaCy's small English pipeline (real ones): names and places
replaced next to the structured entities, the entity list and threshold honoured, the policy's
`ner` block validated, nothing loaded when no scan needs it, no network access, and hostile
text either refused with PolicyError or returned without a planted identifier."""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agogosml.privacy.engine import PolicyEngine
from agogosml.privacy.entities import PRESIDIO_TO_OURS
from agogosml.privacy.errors import PolicyError, PrivacyError
from agogosml.privacy.policy import Policy
from agogosml.privacy.presidio import (
    OVERLAP,
    WINDOW,
    PresidioAnalyzer,
    analyzers_for,
    engine,
    load_spacy,
    windows,
)
from agogosml.privacy.recognizers import Span, StructuredAnalyzer, cover, entities_in

ROOT = Path(__file__).resolve().parents[2]
NER_POLICY = """
ner: true
fields:
  notes: scan
  contact: {action: scan, entities: [EMAIL, PHONE]}
"""
CANARY_EMAIL = "canary.subject@example.org"
CANARY_IBAN = "NL91ABNA0417164300"


@pytest.fixture(scope="module")
def ner() -> PresidioAnalyzer:
    return PresidioAnalyzer()  # PERSON and LOCATION: the model's NER alone


@pytest.fixture(scope="module")
def patterns() -> PresidioAnalyzer:
    """Presidio's own recognizers for what ours also find (full pipeline, a second load)."""
    return PresidioAnalyzer({"EMAIL", "PHONE", "IBAN", "URL"})


@pytest.fixture(scope="module")
def scanning(ner: PresidioAnalyzer) -> PolicyEngine:
    return PolicyEngine(Policy.from_yaml(NER_POLICY))


def test_names_and_places_in_free_text_are_replaced(scanning: PolicyEngine) -> None:
    out = scanning.apply({"notes": "Mohammed Nguyen moved from Utrecht to Berlin.", "id": 7})
    assert out == {"notes": "<PERSON> moved from <LOCATION> to <LOCATION>.", "id": 7}


def test_ner_and_structured_entities_in_one_text(scanning: PolicyEngine) -> None:
    text = (
        "Hi, this is Emma Johnson, you can reach me at emma.johnson@example.com or "
        "+31 6 12345678; refund to NL91 ABNA 0417 1643 00 please."
    )
    assert scanning.apply({"notes": text})["notes"] == (
        "Hi, this is <PERSON>, you can reach me at <EMAIL> or <PHONE>; refund to <IBAN> please."
    )


def test_a_scan_rule_without_model_entities_keeps_names(scanning: PolicyEngine) -> None:
    out = scanning.apply({"contact": "Thomas Kowalski, thomas@example.com"})
    assert out["contact"] == "Thomas Kowalski, <EMAIL>"


def test_a_partial_overlap_between_analyzers_leaves_nothing_in_clear() -> None:
    text = "call Ann +31 6 12345678 today"
    phone = Span(9, 23, "PHONE", 0.75)
    name = Span(5, 14, "PERSON", 0.85)  # a model reading "Ann +31 6" as a name
    assert entities_in(text, cover(text, [phone, name])) == [
        ("PERSON", "Ann +31 6"),
        ("PHONE", "12345678"),
    ]
    inside = Span(5, 8, "PERSON", 0.85)
    email = Span(0, 30, "EMAIL", 0.9)
    assert cover(text, [inside, email]) == [email]
    assert cover(text, [Span(0, 4, "X", 0.5), Span(3, 5, "Y", 0.4)]) == [Span(0, 4, "X", 0.5)]


def test_presidio_recognizers_report_our_entity_names(patterns: PresidioAnalyzer) -> None:
    text = "Mail ann@example.com, phone +44 20 7946 0958, IBAN DE89 3704 0044 0532 0130 00."
    assert entities_in(text, patterns.analyze(text)) == [
        ("EMAIL", "ann@example.com"),
        ("PHONE", "+44 20 7946 0958"),
        ("IBAN", "DE89 3704 0044 0532 0130 00"),
    ]


def test_the_entity_list_is_honoured(ner: PresidioAnalyzer) -> None:
    text = "Please ask Thomas Kowalski in Rotterdam to call back."
    assert entities_in(text, ner.analyze(text)) == [
        ("PERSON", "Thomas Kowalski"),
        ("LOCATION", "Rotterdam"),
    ]
    places = PresidioAnalyzer({"LOCATION"})
    assert places.entities == frozenset({"LOCATION"})
    assert entities_in(text, places.analyze(text)) == [("LOCATION", "Rotterdam")]


def test_the_score_threshold_is_honoured() -> None:
    text = "Please ask Thomas Kowalski to call back."
    # Presidio scores the spaCy model's entities 0.85.
    assert [s.score for s in PresidioAnalyzer({"PERSON"}, 0.85).analyze(text)] == [0.85]
    assert PresidioAnalyzer({"PERSON"}, 0.9).analyze(text) == []


def test_scanning_for_email_alone_does_not_run_the_model() -> None:
    class Counting(PresidioAnalyzer):
        calls = 0

        def analyze(self, text: str) -> list[Span]:
            Counting.calls += 1
            return super().analyze(text)

    counting = Counting()
    policy = Policy.from_yaml(NER_POLICY)
    engine_ = PolicyEngine(policy, analyzers=(StructuredAnalyzer(), counting))
    engine_.apply({"contact": "Ann, ann@example.com"})
    assert Counting.calls == 0
    engine_.apply({"notes": "Ann, ann@example.com"})
    assert Counting.calls == 1


def test_the_table_names_every_entity_presidio_reports(patterns: PresidioAnalyzer) -> None:
    assert set(engine(full=True).get_supported_entities()) == set(PRESIDIO_TO_OURS)


def test_text_longer_than_a_window_is_scanned_across_window_edges(ner: PresidioAnalyzer) -> None:
    sentence = "The parcel was shipped on time. "
    name_at = WINDOW - 8  # "Thomas Kowalski" straddles the first window's end
    text = (sentence * (name_at // len(sentence) + 1))[:name_at]
    text = text[: text.rfind(" ") + 1].ljust(name_at, " ")
    text += "Thomas Kowalski asked for a refund. " + sentence * 700 + "Ask Anna Rossi why."
    assert len(text) > 2 * WINDOW
    found = entities_in(text, ner.analyze(text))
    assert found == [("PERSON", "Thomas Kowalski"), ("PERSON", "Anna Rossi")]
    assert ner.analyze(text)[0].start == name_at


def test_windows_cover_the_text_with_overlaps() -> None:
    text = "x" * (3 * WINDOW)
    pieces = list(windows(text))
    assert pieces[0] == (0, text[:WINDOW])
    for (start, piece), (next_start, _) in itertools.pairwise(pieces):
        assert next_start == start + WINDOW - OVERLAP
        assert len(piece) == WINDOW
    assert pieces[-1][0] + len(pieces[-1][1]) == len(text)
    assert list(windows("")) == [(0, "")]


def test_lone_surrogates_and_control_characters_keep_offsets(ner: PresidioAnalyzer) -> None:
    text = "\ud800\x00\x1b[31m Please ask Thomas Kowalski to call back.\udfff"
    assert entities_in(text, ner.analyze(text)) == [("PERSON", "Thomas Kowalski")]


def test_ner_settings_are_validated() -> None:
    with pytest.raises(PolicyError, match=r"unknown entities \['PERSN'\]"):
        Policy.from_yaml("ner: true\nfields: {n: {action: scan, entities: [PERSN]}}")
    with pytest.raises(PolicyError, match=r"\['PERSON'\] need NER"):
        Policy.from_yaml("fields: {n: {action: scan, entities: [PERSON]}}")
    with pytest.raises(PolicyError, match=r"\['LOCATION'\] need NER"):
        Policy.from_yaml(
            "ner: {entities: [PERSON]}\nfields: {n: {action: scan, entities: [LOCATION]}}"
        )
    with pytest.raises(PolicyError, match=r"ner: .*unknown entities \['EMAIL_ADDRESS'\]"):
        Policy.from_yaml("ner: {entities: [EMAIL_ADDRESS]}")
    with pytest.raises(PolicyError, match=r"ner\.model"):
        Policy.from_yaml("ner: {model: ../models/evil}")
    with pytest.raises(PolicyError, match=r"ner\.score"):
        Policy.from_yaml("ner: {score: 0.3}")
    with pytest.raises(PolicyError, match=r"ner\.score_threshold"):
        Policy.from_yaml("ner: {score_threshold: 1.5}")
    policy = Policy.from_yaml(
        "ner: {entities: [PERSON, URL], score_threshold: 0.7}\n"
        "fields: {n: {action: scan, entities: [URL, EMAIL]}}"
    )
    assert policy.ner is not None
    assert policy.ner.entities == {"PERSON", "URL"}
    assert Policy.from_yaml("ner: false").ner is None
    with pytest.raises(ValueError, match="unknown entities"):
        PresidioAnalyzer({"PERSN"})


def test_a_missing_spacy_package_is_an_error_not_a_download() -> None:
    with pytest.raises(PrivacyError, match="not installed"):
        load_spacy("en_core_web_nonexistent_pipeline", full=False)
    policy = Policy.from_yaml("ner: {model: en_core_web_nonexistent_pipeline}\nfields: {n: scan}")
    with pytest.raises(PrivacyError, match="not installed"):
        PolicyEngine(policy)


def test_analyzers_for_loads_presidio_only_for_a_scan_with_ner(ner: PresidioAnalyzer) -> None:
    kinds = [
        [type(a).__name__ for a in analyzers_for(Policy.from_yaml(text))]
        for text in ("fields: {n: scan}", "ner: true\nfields: {n: redact}", NER_POLICY)
    ]
    assert kinds == [
        ["StructuredAnalyzer"],
        ["StructuredAnalyzer"],
        ["StructuredAnalyzer", "PresidioAnalyzer"],
    ]


def run_python(code: str, home: Path) -> dict[str, object]:
    """`code` in a fresh interpreter with an empty home and cache; its last stdout line is
    JSON."""
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    env.pop("TLDEXTRACT_CACHE", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_no_spacy_or_presidio_without_a_scan_that_uses_ner(tmp_path: Path) -> None:
    code = """if True:
        import json, sys
        from agogosml.privacy.engine import PolicyEngine
        from agogosml.privacy.policy import Policy
        PolicyEngine(Policy.from_yaml("fields: {notes: scan}")).apply({"notes": "Ann"})
        PolicyEngine(Policy.from_yaml("ner: true\\nfields: {n: redact}")).apply({"n": "Ann"})
        print(json.dumps(sorted(m for m in ("spacy", "presidio_analyzer", "tldextract")
                                if m in sys.modules)))
    """
    assert run_python(code, tmp_path) == []  # type: ignore[comparison-overlap]


BLOCK_NETWORK = """if True:
    import json, socket
    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network access blocked by the test")
    socket.getaddrinfo = refuse
    socket.create_connection = refuse
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
"""


def test_nothing_touches_the_network(tmp_path: Path) -> None:
    code = (
        BLOCK_NETWORK
        + """
    from agogosml.privacy.presidio import PresidioAnalyzer
    from agogosml.privacy.recognizers import entities_in
    analyzer = PresidioAnalyzer({"EMAIL", "URL", "PERSON"})
    text = "Write to ann.devries@example.co.uk or see https://www.example.org/help or Ann Smith"
    found = entities_in(text, analyzer.analyze(text))
    ours = len(attempts)
    import tldextract  # the control: tldextract's default extractor does try to fetch
    tldextract.TLDExtract()("www.example.com")
    print(json.dumps({"found": found, "ours": ours, "control": len(attempts)}))
    """
    )
    result = run_python(code, tmp_path)
    assert result["ours"] == 0
    assert result["control"] > 0  # type: ignore[operator]
    assert ["EMAIL", "ann.devries@example.co.uk"] in result["found"]  # type: ignore[operator]
    assert ["URL", "https://www.example.org/help"] in result["found"]  # type: ignore[operator]


def test_logs_carry_no_payload(scanning: PolicyEngine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    scanning.apply({"notes": f"Tell Thomas Kowalski at {CANARY_EMAIL} to call the phone desk"})
    assert "Kowalski" not in caplog.text
    assert CANARY_EMAIL not in caplog.text


hostile = st.text(st.characters(exclude_categories=()), max_size=400)


def assert_scan_hides(engine_: PolicyEngine, text: str, canary: str) -> None:
    try:
        out = engine_.apply({"notes": text})
    except PolicyError:
        return
    assert canary not in out["notes"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=hostile, after=hostile, canary=st.sampled_from([CANARY_EMAIL, CANARY_IBAN]))
def test_hostile_text_never_leaks_a_planted_identifier(
    scanning: PolicyEngine, before: str, after: str, canary: str
) -> None:
    assert_scan_hides(scanning, f"{before} {canary} {after}", canary)


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.text(st.characters(exclude_categories=()), min_size=1, max_size=400),
    after=st.text(st.characters(exclude_categories=()), min_size=1, max_size=400),
    length=st.integers(WINDOW // 2, 50_000),
    canary=st.sampled_from([CANARY_EMAIL, CANARY_IBAN]),
)
def test_long_hostile_text_never_leaks_a_planted_identifier(
    scanning: PolicyEngine, before: str, after: str, length: int, canary: str
) -> None:
    """Up to 100 kB: several model windows, the canary anywhere near their edges."""
    text = f"{(before * length)[:length]} {canary} {(after * length)[:length]}"
    assert_scan_hides(scanning, text, canary)
