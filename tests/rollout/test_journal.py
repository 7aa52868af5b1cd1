"""The rollout journal on a real API server: concurrent writers lose no step."""

from __future__ import annotations

import threading

from kubernetes import client

from agogosml.rollout.cluster import Journal


def test_concurrent_rollout_tools_lose_no_journal_entry(api_client: client.ApiClient,
                                                       namespace: str) -> None:
    writers = [Journal(api_client, namespace, "release") for _ in range(3)]

    def write(number: int, journal: Journal) -> None:
        for count in range(5):
            journal.record(f"writer-{number}", count=count)

    threads = [threading.Thread(target=write, args=pair) for pair in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    entries = Journal(api_client, namespace, "release").entries()
    written = sorted((entry["step"], entry["count"]) for entry in entries)
    assert written == sorted((f"writer-{n}", c) for n in range(3) for c in range(5))
    for number in range(3):
        mine = [entry["count"] for entry in entries if entry["step"] == f"writer-{number}"]
        assert mine == sorted(mine), "each writer's steps stay in order"
