"""What the monitor shows: the JSON shapes its dashboard and API read, and the one
interface (`MonitorView`) the monitor service implements for them.

Everything here is plain JSON (TypedDicts), so the dashboard's JavaScript, the API's
clients and the tests read the same documented shapes. Times are milliseconds since the
epoch. No shape ever holds a payload field that is not a model input: a scored event's
`features` are the model's input columns only.
"""

from __future__ import annotations

from typing import Literal, Protocol, TypedDict

from agogosml.monitor.store.base import AsyncEventStore

FeatureKind = Literal["numeric", "categorical", "prediction", "prediction_class"]


class FeatureDrift(TypedDict):
    """One feature (or the prediction) of one model version, over the latest window."""

    feature: str
    kind: FeatureKind
    n: int
    """Events in the window the tests ran on."""
    psi: float
    pvalue: float
    """KS on the reference bins for numeric features, chi-square for categorical ones."""
    js_distance: float | None
    """Jensen-Shannon distance (categorical and prediction class only)."""
    detector_level: float
    """The online detector's highest statistic as a share of its threshold (1.0 alarms)."""
    alarms: int
    """Online detector alarms on this feature since the monitor started."""
    bins: list[str]
    """Bin labels in order: "≤ 12.5", "(12.5, 20]", "> 90" for numeric features, the
    category names (plus "__other__") for categorical ones."""
    reference: list[float]
    """The training data's share per bin (the overlay)."""
    live: list[float]
    """The window's share per bin."""


class VersionDrift(TypedDict):
    model_name: str
    model_version: str
    profile: str
    """"loaded", or why there is no reference profile (then `features` is empty)."""
    events: int
    """Events of this version the detector has seen."""
    window_events: int
    features: list[FeatureDrift]


class CalibrationBin(TypedDict):
    predicted: float
    """Mean predicted probability of the bin's events."""
    observed: float
    """Share of positive labels among them."""
    n: int


class VersionPerformance(TypedDict):
    """Live performance of one model version from late labels, over a sliding window."""

    model_name: str
    model_version: str
    window_s: float
    labelled: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    roc_auc: float | None
    """None while the window holds only one class."""
    log_loss: float | None
    calibration: list[CalibrationBin]


class PerformancePoint(TypedDict):
    """One window of a past range, for one model version."""

    window_start_ms: int
    model_version: str
    labelled: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    roc_auc: float | None
    log_loss: float | None


class PerformanceHistory(TypedDict):
    points: list[PerformancePoint]
    """Per model version and window, in time order; windows without labels left out."""
    truncated: bool
    """True when a version had more labelled predictions in the range than are read: its
    earliest windows are missing."""


class LiveSnapshot(TypedDict):
    """The pipeline now, as the monitor sees it."""

    at_ms: int
    window_s: float
    """The span the rates and quantiles below cover."""
    events_per_s: float
    """Scored events stored per second."""
    latency_ms_p50: float | None
    """Event time to scored time, over the window."""
    latency_ms_p99: float | None
    stored_total: int
    skipped_total: int
    """Records on the output topic that were not scored events."""
    store_failures_total: int
    labels_total: int
    prediction_shares: dict[str, float]
    """Predicted value -> share of the window's events."""
    dead_letters: dict[str, float]
    """Dead-lettered records by reason, scraped from the input reader (empty if unknown)."""
    errors: dict[str, float]
    """Failed requests and writes by service (e.g. "app 5xx", "writer failed")."""


class MonitorView(Protocol):
    """What the dashboard reads. The monitor service implements it; each call is cheap
    (it reads state kept up to date by ingestion) except the store's own queries."""

    @property
    def store(self) -> AsyncEventStore: ...

    def live(self) -> LiveSnapshot: ...

    def drift(self) -> list[VersionDrift]: ...

    def performance(self) -> list[VersionPerformance]: ...

    async def performance_history(self, start_ms: int, end_ms: int,
                                  window_ms: int) -> PerformanceHistory:
        """Figures per window of a past range (ValueError: windows the store cannot cut)."""
        ...
