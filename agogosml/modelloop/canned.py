"""Canned examples: records whose class is beyond doubt, which every candidate must get
right. For the demo data they follow from its risk rules; for other data sets they come
from a JSON file: [{"name": "...", "record": {...}, "expected": 0 or 1}, ...].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agogosml.demo.data import CHANNEL_RISK, COUNTRY_RISK, FEATURES, MERCHANT_RISK
from agogosml.modelloop.dataset import FeatureSchema
from agogosml.modelloop.errors import ModelLoopError


@dataclass(frozen=True)
class CannedExample:
    name: str
    record: dict[str, Any]
    expected: int


def _riskiest(table: dict[str, float]) -> str:
    return max(table, key=table.__getitem__)


def _safest(table: dict[str, float]) -> str:
    return min(table, key=table.__getitem__)


def demo_examples() -> tuple[CannedExample, ...]:
    """Every term of the demo's fraud logit at its riskiest (or safest) value, numbers kept
    inside the range a few thousand demo rows cover, so tree models have seen the region:
    the noiseless fraud probabilities are about 0.997 and 0.001."""
    fraud = {"amount": 900.0, "hour": 3, "distance_from_home_km": 90.0,
             "transactions_last_24h": 10, "merchant_category": _riskiest(MERCHANT_RISK),
             "channel": _riskiest(CHANNEL_RISK), "country": _riskiest(COUNTRY_RISK),
             "card_present": False}
    legit = {"amount": 12.0, "hour": 14, "distance_from_home_km": 1.0,
             "transactions_last_24h": 0, "merchant_category": _safest(MERCHANT_RISK),
             "channel": _safest(CHANNEL_RISK), "country": _safest(COUNTRY_RISK),
             "card_present": True}
    return (CannedExample("obvious_fraud", fraud, 1), CannedExample("obvious_legit", legit, 0))


def default_examples(schema: FeatureSchema) -> tuple[CannedExample, ...]:
    """The demo's examples when the model has the demo's features, none otherwise."""
    return demo_examples() if schema.features == FEATURES else ()


def load_examples(path: Path) -> tuple[CannedExample, ...]:
    try:
        items = json.loads(path.read_text())
        return tuple(CannedExample(str(item["name"]), dict(item["record"]),
                                   int(item["expected"])) for item in items)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoopError(f"canned examples {path}: {error}") from None
