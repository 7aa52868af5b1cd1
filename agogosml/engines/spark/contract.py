"""What happens to one micro-batch of Kafka records, in Spark's Python workers: the reader's
contract, the app's scoring and the writer's format, by their own code.

Each record becomes a scored event for the output stream (keyed by its id, exactly as the
output writer writes it) or a dead letter for the dead-letter stream (exactly as the reader
writes it, reason in the `agogosml-reason` header): a record the contract refuses keeps the
reader's reason (`schema_violation`, `not_json`, `privacy_policy`, ...), a record the model
refuses gets the reader's reason for an app's refusal, `rejected_by_app`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import orjson
import pandas as pd

from agogosml.engines.spark.settings import SparkJobSettings
from agogosml.envelope import Event, ScoredBatch, decode_batch, dumps
from agogosml.errors import BadRequestError, InvalidRecordError, StoreUnavailableError
from agogosml.logs import configure_logging
from agogosml.privacy.sealing import Sealer
from agogosml.services.app.model import LoadedModel, load_model
from agogosml.services.app.scoring import score_events
from agogosml.services.input_reader.deadletters import Rejection, dead_letter, short
from agogosml.services.input_reader.privacy import PrivacyStage, load_privacy
from agogosml.services.input_reader.validation import RecordValidator
from agogosml.services.output_writer.service import to_record
from agogosml.streaming.base import OutRecord, Position, SourceRecord

log = logging.getLogger(__name__)

REFUSED_BY_MODEL = "rejected_by_app"
"""The reader's reason for a record the app refused: the same reason here, where the model
refuses it."""

INPUT_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp_ms")
OUTPUT_SCHEMA = "topic string, key binary, value binary, " \
                "headers array<struct<key: string, value: binary>>"
"""The columns Spark's Kafka sink writes: `topic` picks the output or dead-letter stream."""


@dataclass(frozen=True)
class Contract:
    """The reader's validator and privacy stage, and the app's model, for one settings."""

    validator: RecordValidator
    privacy: PrivacyStage | None
    sealer: Sealer | None
    model: LoadedModel
    output_stream: str
    deadletter_stream: str
    max_original_bytes: int

    @classmethod
    def from_settings(cls, settings: SparkJobSettings) -> Contract:
        privacy = None
        if settings.privacy_policy_path is not None:
            url = settings.subject_keys_url
            privacy = load_privacy(settings.privacy_policy_path, settings.privacy_keyring_path,
                                   settings.subject_field,
                                   None if url is None else url.get_secret_value(),
                                   settings.subject_keys_kek_path)
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.set_registry_uri(settings.mlflow_tracking_uri)
        return cls(
            validator=RecordValidator(settings.load_schema(), settings.max_record_bytes,
                                      settings.id_field, settings.subject_field,
                                      settings.time_field),
            privacy=None if privacy is None else privacy.stage,
            sealer=None if privacy is None else privacy.sealer,
            model=load_model(settings.model_uri),
            output_stream=settings.output_stream,
            deadletter_stream=settings.deadletter_stream,
            max_original_bytes=settings.deadletter_max_original_bytes,
        )

    def process(self, records: list[SourceRecord]) -> list[tuple[str, OutRecord]]:
        """Each record's way out: (stream, record), scored events first. The events cross
        the same JSON hops as in the trio (reader -> app, app -> writer), so what the model
        sees and what is written are byte for byte the same."""
        events: list[Event] = []
        accepted: list[SourceRecord] = []
        rejections: list[Rejection] = []
        for record in records:
            try:
                events.append(self._event(record))
                accepted.append(record)
            except InvalidRecordError as error:
                rejections.append(self._rejection(record, error.reason, error.detail))
            except StoreUnavailableError:
                raise  # an outage, not the record's fault: the task fails and is retried
            except orjson.JSONEncodeError as error:
                rejections.append(self._rejection(record, "unserializable", str(error)))
            except BadRequestError as error:  # what the app would refuse the event for
                rejections.append(self._rejection(record, REFUSED_BY_MODEL, str(error)))
            except Exception as error:
                rejections.append(self._rejection(
                    record, "internal_error", f"{type(error).__name__}: {short(str(error), 300)}"))
        out: list[tuple[str, OutRecord]] = []
        if events:
            result = score_events(self.model, events)
            body = dumps(ScoredBatch(result.scored).to_json())
            out = [(self.output_stream, to_record(index, item))
                   for index, item in enumerate(decode_batch(body)["events"])]
            rejections += [Rejection(accepted[refusal.index], REFUSED_BY_MODEL,
                                     short(refusal.reason), events[refusal.index].subject)
                           for refusal in result.rejected]
        out += [(self.deadletter_stream,
                 dead_letter(rejection, self.max_original_bytes, self.sealer))
                for rejection in rejections]
        if rejections:
            log.info("records dead-lettered", extra={
                "count": len(rejections),
                "reasons": sorted({rejection.reason for rejection in rejections})})
        return out

    def _event(self, record: SourceRecord) -> Event:
        event = self.validator.to_event(record)
        if self.privacy is not None:
            event = self.privacy(event)
        return Event.from_json(orjson.loads(orjson.dumps(event.to_json())))

    def _rejection(self, record: SourceRecord, reason: str, detail: str) -> Rejection:
        return Rejection(record, reason, detail, self._subject_of(record.value))

    def _subject_of(self, value: bytes) -> str | None:
        return None if self.privacy is None else self.privacy.subject_of_record(value)


def source_records(frame: pd.DataFrame) -> list[SourceRecord]:
    return [SourceRecord(value=bytes(value) if value is not None else b"",
                         position=Position(topic, str(partition), int(offset)),
                         timestamp_ms=int(timestamp_ms),
                         key=None if key is None else bytes(key))
            for key, value, topic, partition, offset, timestamp_ms in zip(
                *(frame[column] for column in INPUT_COLUMNS), strict=True)]


def output_frame(routed: list[tuple[str, OutRecord]]) -> pd.DataFrame:
    return pd.DataFrame({
        "topic": [stream for stream, _ in routed],
        "key": [record.key for _, record in routed],
        "value": [record.value for _, record in routed],
        "headers": [[{"key": name, "value": value} for name, value in record.headers]
                    for _, record in routed],
    })


_contracts: dict[str, Contract] = {}
"""One contract per settings in each Python worker, which Spark reuses across micro-batches:
the model loads once per worker, not once per batch."""


def _contract(settings: SparkJobSettings) -> Contract:
    key = settings.model_dump_json()
    if key not in _contracts:
        configure_logging("spark-worker", settings.log_level)
        _contracts[key] = Contract.from_settings(settings)
        log.info("contract ready in a Spark worker", extra={
            "model": _contracts[key].model.ref.name,
            "version": _contracts[key].model.ref.version})
    return _contracts[key]


class PartitionProcessor:
    """The function given to mapInPandas: it is pickled with its settings to every worker."""

    def __init__(self, settings: SparkJobSettings) -> None:
        self.settings = settings

    def __call__(self, frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        contract = _contract(self.settings)
        for frame in frames:
            yield output_frame(contract.process(source_records(frame)))
