"""The input reader's HTTP face: probes and metrics around the consume loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from agogosml.services.input_reader.pipeline import InputReader
from agogosml.web.errors import install_error_handlers
from agogosml.web.probes import Problem, probe_router


def create_app(reader: InputReader, registry: CollectorRegistry, app_health_url: str) -> FastAPI:
    """Runs `reader` for the app's lifetime; on shutdown drains it and closes its clients."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await reader.start()
        try:
            yield
        finally:
            await reader.stop()

    async def readiness() -> dict[str, bool]:
        return {
            "consuming": reader.running,
            "source": await reader.source.is_ready(),
            "deadletters": await reader.dead_letters.sink.is_ready(),
            "app": await reader.app_client.is_reachable(app_health_url),
        }

    def liveness() -> Problem | None:
        if not reader.running:
            return Problem("stopped", "the consume loop has ended")
        return reader.progress.liveness_problem()

    app = FastAPI(title="agogosml input reader", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(probe_router(registry, readiness, liveness,
                                    reader.progress.readiness_problem))
    return app
