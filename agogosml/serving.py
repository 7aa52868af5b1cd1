"""Running a service under uvicorn with graceful shutdown on SIGTERM and SIGINT.

uvicorn stops accepting connections, waits for in-flight requests (up to the
shutdown timeout), then runs the app's lifespan shutdown, where each service
drains its own work.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from agogosml.errors import ConfigurationError
from agogosml.logs import configure_logging
from agogosml.settings import ServiceSettings

log = logging.getLogger(__name__)

EXIT_BAD_CONFIGURATION = 2


def run_service(build: Callable[[], tuple[FastAPI, ServiceSettings]], service: str) -> None:
    """Build the service (settings, dependencies, app), then serve it until signalled.
    A configuration problem ends the process at once with a message naming the setting."""
    configure_logging(service)
    try:
        app, settings = build()
    except ConfigurationError as error:
        print(f"agogosml {service}: {error}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIGURATION) from None
    configure_logging(service, settings.log_level)
    # Everything loaded so far (MLflow, scikit-learn, the model) lives for the whole
    # process: keep it out of the garbage collector's scans, which otherwise walk those
    # objects on every full collection and show up as latency spikes.
    gc.collect()
    gc.freeze()
    log.info("starting", extra={"host": settings.host, "port": settings.port})
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s), lifespan="on",
    )
    uvicorn.Server(config).run()
    log.info("stopped")
