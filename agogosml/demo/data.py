"""A deterministic synthetic card-transaction data set.

Numeric and categorical features drive a fraud label through a fixed logistic
rule with noise; personal fields (name, email, phone, customer id) ride along
as they would in real data, for the privacy work to anonymize.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

NUMERIC_FEATURES = ("amount", "hour", "distance_from_home_km", "transactions_last_24h")
CATEGORICAL_FEATURES = ("merchant_category", "channel", "country")
BOOLEAN_FEATURES = ("card_present",)
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES + BOOLEAN_FEATURES
PERSONAL_FIELDS = ("customer_id", "name", "email", "phone")
LABEL = "is_fraud"
ID_FIELD = "transaction_id"

MERCHANT_RISK = {"grocery": -1.0, "fuel": -0.6, "restaurant": -0.5, "travel": 0.4,
                 "electronics": 0.8, "jewelry": 1.2, "online_gaming": 1.5}
CHANNEL_RISK = {"pos": -0.8, "atm": 0.0, "online": 0.9}
COUNTRY_RISK = {"US": -0.3, "GB": -0.3, "DE": -0.4, "FR": -0.3, "IN": 0.2, "BR": 0.4, "NG": 0.9}
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jon",
               "Kemi", "Liam", "Maya", "Nils", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tara")
LAST_NAMES = ("Adeyemi", "Brown", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen",
              "Ito", "Jensen", "Kowalski", "Lopez", "Muller", "Novak", "Okafor", "Patel")


def transactions(rows: int, seed: int = 7, customers: int = 2_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, customers, rows)
    merchant = rng.choice(list(MERCHANT_RISK), rows)
    channel = rng.choice(list(CHANNEL_RISK), rows, p=[0.55, 0.1, 0.35])
    country = rng.choice(list(COUNTRY_RISK), rows, p=[0.4, 0.15, 0.12, 0.1, 0.1, 0.07, 0.06])
    amount = np.round(rng.lognormal(3.5, 1.1, rows), 2)
    hour = rng.integers(0, 24, rows)
    distance = np.round(rng.exponential(15.0, rows), 1)
    recent = rng.poisson(3, rows)
    card_present = (channel == "pos") & (rng.random(rows) < 0.95)
    logit = (-4.2 + 0.55 * np.log1p(amount / 50) + 0.9 * ((hour < 5) | (hour > 22))
             + 0.025 * distance + 0.18 * recent - 0.7 * card_present
             + np.vectorize(MERCHANT_RISK.get)(merchant) + np.vectorize(CHANNEL_RISK.get)(channel)
             + np.vectorize(COUNTRY_RISK.get)(country) + rng.normal(0, 0.6, rows))
    fraud = rng.random(rows) < 1 / (1 + np.exp(-logit))
    first = np.array(FIRST_NAMES)[customer % len(FIRST_NAMES)]
    last = np.array(LAST_NAMES)[(customer // len(FIRST_NAMES)) % len(LAST_NAMES)]
    return pd.DataFrame({
        "transaction_id": [f"tx-{seed}-{i:09d}" for i in range(rows)],
        "customer_id": [f"C{c:06d}" for c in customer],
        "name": [f"{f} {s}" for f, s in zip(first, last, strict=True)],
        "email": [f"{f.lower()}.{s.lower()}{c}@example.com"
                  for f, s, c in zip(first, last, customer, strict=True)],
        "phone": [f"+1-555-{c // 1000:03d}-{c % 10000:04d}" for c in customer],
        "amount": amount,
        "hour": hour,
        "distance_from_home_km": distance,
        "transactions_last_24h": recent,
        "merchant_category": merchant,
        "channel": channel,
        "country": country,
        "card_present": card_present,
        LABEL: fraud.astype(int),
    })


def events(rows: int, seed: int = 11) -> list[dict[str, Any]]:
    """Transactions as the producer sends them: no label, plain JSON types."""
    return labelled_events(rows, seed)[0]


def labelled_events(rows: int, seed: int = 11) -> tuple[list[dict[str, Any]], list[int]]:
    """The producer's events and, apart, each one's label (the ground truth that arrives
    late, on the feedback topic)."""
    full = transactions(rows, seed)
    labels = [int(label) for label in full[LABEL]]
    frame = full.drop(columns=[LABEL])
    records: list[dict[str, Any]] = [
        {str(key): value for key, value in row.items()} for row in frame.to_dict("records")
    ]
    for record in records:
        record["hour"] = int(record["hour"])
        record["transactions_last_24h"] = int(record["transactions_last_24h"])
        record["card_present"] = bool(record["card_present"])
    return records, labels
