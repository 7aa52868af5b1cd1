"""Choosing a source or sink from settings. Streams are named the same way everywhere:
a Kafka topic, an event hub, or `<files_dir>/<stream>.jsonl`."""

from __future__ import annotations

from agogosml.errors import ConfigurationError
from agogosml.settings import Transport, TransportSettings
from agogosml.streaming.base import Sink, Source
from agogosml.streaming.files import JsonLinesSink, JsonLinesSource
from agogosml.streaming.kafka import KafkaSink, KafkaSource


def build_source(kind: Transport, settings: TransportSettings, stream: str,
                 group: str) -> Source:
    if kind == "file":
        return JsonLinesSource(settings.files_dir / f"{stream}.jsonl")
    if kind == "kafka":
        return KafkaSource(stream, group, settings.kafka_client_options())
    from agogosml.streaming.eventhubs import EventHubSource, blob_checkpoint_store

    connection = _eventhubs_connection(settings)
    store = blob_checkpoint_store(settings)
    return EventHubSource.from_connection_string(connection, stream, group, store)


def build_sink(kind: Transport, settings: TransportSettings, stream: str) -> Sink:
    if kind == "file":
        return JsonLinesSink(settings.files_dir / f"{stream}.jsonl")
    if kind == "kafka":
        return KafkaSink(stream, settings.kafka_client_options())
    from agogosml.streaming.eventhubs import EventHubSink

    return EventHubSink.from_connection_string(_eventhubs_connection(settings), stream)


def _eventhubs_connection(settings: TransportSettings) -> str:
    if settings.eventhubs_connection_string is None:
        raise ConfigurationError("the eventhubs transport needs EVENTHUBS_CONNECTION_STRING")
    return settings.eventhubs_connection_string.get_secret_value()
