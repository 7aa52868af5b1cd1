"""Ground truth arriving late: `{"id": <event id>, "label": <value>}` records on the
feedback topic (`agogosml.labels`) or in `POST /v1/labels`, joined to predictions by
event id in the store.

A label is a JSON scalar: a bool, a 64-bit integer, a finite number or a short string
(class names). Anything else is refused with a reason; on the topic such a record is
skipped and counted, so no record can stop label ingestion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agogosml.envelope import loads
from agogosml.errors import BadRequestError
from agogosml.monitor.ingest import TopicIngestor
from agogosml.monitor.store.base import AsyncEventStore, Label
from agogosml.retry import Backoff
from agogosml.streaming.base import Source, SourceRecord

MAX_ID_LENGTH = 256
MAX_LABEL_LENGTH = 256
INT64 = 2**63


def _label_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        if value is None:
            raise BadRequestError("'label' must not be null")
        return value
    if isinstance(value, int):
        if not -INT64 <= value < INT64:
            raise BadRequestError("'label' must be a 64-bit integer")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise BadRequestError("'label' must be finite")
        return value
    if isinstance(value, str):
        if not value or len(value) > MAX_LABEL_LENGTH or "\x00" in value:
            raise BadRequestError(f"'label' must be a string of 1 to {MAX_LABEL_LENGTH} "
                                  "characters without NUL")
        return value
    raise BadRequestError("'label' must be a boolean, number or string")


def parse_label(item: Any, arrived_at_ms: int) -> Label:
    """One label from its JSON object; BadRequestError says what is wrong."""
    if not isinstance(item, dict):
        raise BadRequestError("a label must be a JSON object")
    unknown = sorted(set(item) - {"id", "label"})
    if unknown:
        raise BadRequestError(f"unknown field {unknown[0][:40]!r} in a label")
    event_id = item.get("id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_ID_LENGTH \
            or "\x00" in event_id:
        raise BadRequestError(f"'id' must be a string of 1 to {MAX_ID_LENGTH} characters "
                              "without NUL")
    if "label" not in item:
        raise BadRequestError("a label is missing the field 'label'")
    return Label(event_id=event_id, label=_label_value(item["label"]),
                 arrived_at_ms=arrived_at_ms)


def parse_labels(items: Sequence[Any], arrived_at_ms: int) -> list[Label]:
    """Every label of a request, or BadRequestError naming the first bad one (none stored)."""
    labels = []
    for index, item in enumerate(items):
        try:
            labels.append(parse_label(item, arrived_at_ms))
        except BadRequestError as error:
            raise BadRequestError(f"labels[{index}]: {error}") from None
    return labels


class LabelIngestor(TopicIngestor[Label]):
    """The feedback topic into the store, committed only after the store took it."""

    what = "labels"

    def __init__(self, source: Source, store: AsyncEventStore, backoff: Backoff,
                 batch_max: int = 1_000, fetch_timeout_s: float = 0.5) -> None:
        super().__init__(source, backoff, batch_max, fetch_timeout_s)
        self.store = store

    def parse(self, record: SourceRecord, now_ms: int) -> Label | None:
        try:
            return parse_label(loads(record.value), now_ms)
        except (ValueError, BadRequestError):
            return None

    async def write(self, items: list[Label]) -> int:
        await self.store.add_labels(items)
        return len(items)
