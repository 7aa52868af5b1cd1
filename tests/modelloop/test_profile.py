"""The reference profile bins live windows exactly as it binned the training data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agogosml.modelloop.dataset import FeatureSchema
from agogosml.modelloop.profile import NumericProfile, ReferenceProfile, value_shares


def test_numbers_get_decile_bins_with_open_outer_ends() -> None:
    profile = NumericProfile.of(pd.Series(np.arange(1, 101, dtype=float)))
    assert len(profile.edges) == 11
    assert len(profile.shares) == 10
    assert profile.shares == pytest.approx((0.1,) * 10)
    assert (profile.min, profile.max, profile.missing_share) == (1.0, 100.0, 0.0)
    window = pd.Series([-1_000.0, 1.0, 50.0, 10_000.0, None])
    shares = profile.bin_shares(window)
    assert shares[0] == pytest.approx(0.5), "below the range and the minimum: first bin"
    assert shares[-1] == pytest.approx(0.25), "above the range: last bin"


def test_repeated_quantiles_collapse_and_a_constant_has_one_bin() -> None:
    few = NumericProfile.of(pd.Series([0, 0, 0, 0, 0, 0, 1, 1, 2, 3]))
    assert few.edges == tuple(sorted(set(few.edges)))
    assert sum(few.shares) == pytest.approx(1.0)
    constant = NumericProfile.of(pd.Series([5.0, 5.0, None, 5.0]))
    assert constant.edges == (5.0, 5.0)
    assert constant.shares == (1.0,)
    assert constant.missing_share == 0.25


def test_categories_and_predictions_round_trip_through_json() -> None:
    features = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0],
                             "channel": ["pos", "pos", "online", None],
                             "card_present": [True, False, True, True]})
    schema = FeatureSchema("y", ("amount", "channel", "card_present"), ("amount",),
                           ("channel",), ("card_present",))
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.05, 0.95]])
    profile = ReferenceProfile.build(features, pd.Series([0, 0, 1, 1]), schema, probabilities)
    assert profile.categorical["channel"].shares == {"pos": 0.5, "online": 0.25, "None": 0.25}
    assert profile.categorical["card_present"].shares == {"True": 0.75, "False": 0.25}
    assert profile.prediction.class_shares == {"0": 0.5, "1": 0.5}
    assert profile.prediction.shares[1] == 0.25, "0.1 falls in [0.1, 0.2)"
    assert profile.prediction.shares[-1] == 0.25, "0.95 falls in [0.9, 1.0]"
    assert ReferenceProfile.from_json(profile.to_json()) == profile
    assert value_shares(pd.Series(["a", "b", "a"]))["a"] == pytest.approx(2 / 3)
