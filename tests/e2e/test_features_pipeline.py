"""Through the real reader, app and writer on a real broker, a scored event carries the
model's inputs beside its prediction, and never a personal field of the transaction."""

from __future__ import annotations

import asyncio

import mlflow
import orjson
import pytest

from agogosml.demo.data import FEATURES, PERSONAL_FIELDS, events
from tests.conftest import Registry
from tests.e2e.conftest import Pipeline
from tests.kafka_helpers import TopicReader, create_topics, ids, produce_json

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="function")]


def model_inputs(registry: Registry) -> list[str]:
    """The input names of the model's MLflow signature."""
    schema = mlflow.pyfunc.load_model(registry.model_uri).metadata.get_input_schema()
    assert schema is not None
    return list(schema.input_names())


async def test_scored_events_carry_the_models_inputs_and_nothing_personal(
        pipeline: Pipeline, mlflow_registry: Registry) -> None:
    items = {item["transaction_id"]: item for item in events(300, seed=103)}
    inputs = model_inputs(mlflow_registry)
    assert sorted(inputs) == sorted(FEATURES), "the demo model takes exactly its features"
    await create_topics(pipeline.bootstrap, [pipeline.input_topic, pipeline.output_topic,
                                         pipeline.deadletter_topic])
    await asyncio.to_thread(pipeline.start)
    await produce_json(pipeline.bootstrap, pipeline.input_topic, items.values())

    async with TopicReader(pipeline.bootstrap, pipeline.output_topic) as output:
        records = await output.until(lambda r: ids(r) >= items.keys(), 120,
                                     "every transaction scored")

    for record in records:
        sent = items[record["id"]]
        assert record["features"] == {name: sent[name] for name in inputs}
        assert record["subject"] == sent["customer_id"], "the subject stays as it was"
        written = orjson.dumps(record).decode()
        leaked = [name for name in PERSONAL_FIELDS
                  if name != "customer_id" and str(sent[name]) in written]
        assert leaked == [], f"{record['id']} carries personal data: {leaked}"
