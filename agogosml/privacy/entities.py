"""Entity names: ours, and the one table translating Presidio's to ours.

A policy, a `Span` and a scan's "<ENTITY>" placeholder always use our names. Where Presidio
reports an entity our structured recognizers also know, its name is translated
(EMAIL_ADDRESS -> EMAIL, ...); its other entities keep their Presidio names. This module
imports nothing heavy: the policy validates names with it without loading Presidio.
"""

from __future__ import annotations

from agogosml.privacy.recognizers import RECOGNIZERS

# Presidio's name -> ours, for every entity its English predefined recognizers and its spaCy
# NER report (a test keeps this in step with the installed Presidio).
PRESIDIO_TO_OURS: dict[str, str] = {
    # also found by our structured recognizers
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    # from the spaCy model (DATE_TIME also from a pattern)
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
    "ORGANIZATION": "ORGANIZATION",
    "NRP": "NRP",  # nationality, religious or political group
    "DATE_TIME": "DATE_TIME",
    # Presidio's other pattern recognizers
    "URL": "URL",
    "IP_ADDRESS": "IP_ADDRESS",
    "MAC_ADDRESS": "MAC_ADDRESS",
    "UUID": "UUID",
    "CRYPTO": "CRYPTO",
    "MEDICAL_LICENSE": "MEDICAL_LICENSE",
    "UK_NHS": "UK_NHS",
    "US_BANK_NUMBER": "US_BANK_NUMBER",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
    "US_ITIN": "US_ITIN",
    "US_PASSPORT": "US_PASSPORT",
}
OURS_TO_PRESIDIO: dict[str, str] = {ours: theirs for theirs, ours in PRESIDIO_TO_OURS.items()}
PRESIDIO_ENTITIES = frozenset(OURS_TO_PRESIDIO)
"""What a Presidio analyzer can report, in our names."""

# spaCy's entity labels -> Presidio's, for the labels worth reporting; the model's other
# labels (CARDINAL, MONEY, PRODUCT, ...) are ignored.
SPACY_TO_PRESIDIO: dict[str, str] = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
    "NORP": "NRP",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
NER_ONLY = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP"})
"""Entities only the spaCy model finds: scanning for these alone needs only its NER."""

DEFAULT_NER_ENTITIES = frozenset({"PERSON", "LOCATION"})
KNOWN_ENTITIES = frozenset(RECOGNIZERS) | PRESIDIO_ENTITIES
"""Every name a scan rule may ask for."""
