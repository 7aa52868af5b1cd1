"""Creating the pipeline's Kafka topics (idempotently)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


async def ensure_topics(client_options: Mapping[str, Any], topics: Sequence[str],
                        partitions: int = 3, replication: int = 1) -> None:
    admin = AIOKafkaAdminClient(**client_options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(name, partitions, replication) for name in topics
                  if name not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently: fine
                await admin.create_topics(wanted)
    finally:
        await admin.close()
