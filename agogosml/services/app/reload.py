"""Following a registry alias: when `models:/name@alias` points at a new version, load it
off the event loop and swap it in atomically.

Requests read the holder's model once when they start, so each request is scored
entirely by one version, and no request fails during a swap. A version that fails
to load, or loads but cannot score its input example, is logged and the current one
keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from agogosml.errors import AgogosmlError
from agogosml.services.app.model import LoadedModel, load_model

log = logging.getLogger(__name__)


class ModelHolder:
    """The model being served. Replacing `current` is a single reference assignment."""

    def __init__(self, model: LoadedModel) -> None:
        self.current = model


def alias_of(model_uri: str) -> tuple[str, str] | None:
    if not model_uri.startswith("models:/") or "@" not in model_uri:
        return None
    name, _, alias = model_uri.removeprefix("models:/").partition("@")
    return name, alias


class ModelWatcher:
    def __init__(self, holder: ModelHolder, model_uri: str, interval_s: float,
                 on_swap: Callable[[LoadedModel, LoadedModel], None],
                 loader: Callable[[str], LoadedModel] = load_model) -> None:
        self.holder = holder
        self.model_uri = model_uri
        self.interval_s = interval_s
        self.on_swap = on_swap
        self.loader = loader
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0 and alias_of(self.model_uri) is not None

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._run(), name="model-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)  # the polling period of the registry
            await self.check()

    async def check(self) -> bool:
        """Swap in the alias's version if it changed; return whether it did."""
        target = alias_of(self.model_uri)
        assert target is not None
        try:
            version = await asyncio.to_thread(
                lambda: str(MlflowClient().get_model_version_by_alias(*target).version))
        except MlflowException:
            log.warning("cannot read the model alias", extra={"model": target[0],
                                                              "alias": target[1]})
            return False
        if version == self.holder.current.ref.version:
            return False
        try:
            fresh = await asyncio.to_thread(self.loader, self.model_uri)
        except AgogosmlError as error:
            log.error("new model version failed to load; keeping the current one",
                      extra={"version": version, "error": str(error)})
            return False
        if fresh.outputs is None:
            log.error("new model version cannot score its input example; keeping the "
                      "current one", extra={"version": version})
            return False
        old, self.holder.current = self.holder.current, fresh
        self.on_swap(old, fresh)
        log.info("model swapped", extra={"model": fresh.ref.name, "from": old.ref.version,
                                         "to": fresh.ref.version})
        return True
