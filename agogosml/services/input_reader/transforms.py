"""Per-record transforms applied after validation and before forwarding.

This is where PII anonymization plugs in: a transform takes an event and returns
the event to forward. A transform that raises InvalidRecordError dead-letters
that record only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agogosml.envelope import Event

RecordTransform = Callable[[Event], Event]


def apply_transforms(event: Event, transforms: Sequence[RecordTransform]) -> Event:
    for transform in transforms:
        event = transform(event)
    return event
