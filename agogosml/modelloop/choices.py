"""The names the CLI and HTTP offer, kept free of heavy imports."""

from typing import Literal, get_args

Trigger = Literal["manual", "schedule", "drift", "erasure"]
TRIGGERS: tuple[str, ...] = get_args(Trigger)

ESTIMATOR_NAMES = ("logistic_regression", "random_forest", "hist_gradient_boosting")
