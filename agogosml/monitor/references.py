"""The reference profile of each model version: the `reference_profile.json` its training
run logged, found through the MLflow model registry (model name and version -> run).

A version whose profile cannot be had (no such version, a run logged outside the model
loop, the tracking server down) gets a reason instead, and is asked again after
`retry_s`: drift for it is shown as unavailable, never computed against the wrong data.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agogosml.modelloop.profile import ReferenceProfile
from agogosml.modelloop.tracking import PROFILE_ARTIFACT

log = logging.getLogger(__name__)

ProfileLoader = Callable[[str, str], ReferenceProfile]
"""(model name, model version) -> its training run's profile; raises when it cannot."""


def mlflow_profile_loader(tracking_uri: str) -> ProfileLoader:
    """Reads profiles from an MLflow tracking and registry store."""
    from mlflow.tracking import MlflowClient  # the monitor's only MLflow use: load lazily

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def load(model_name: str, model_version: str) -> ReferenceProfile:
        run_id = client.get_model_version(model_name, model_version).run_id
        if not run_id:
            raise LookupError(f"model {model_name} version {model_version} has no run")
        with tempfile.TemporaryDirectory() as directory:
            path = client.download_artifacts(run_id, PROFILE_ARTIFACT, directory)
            return ReferenceProfile.from_json(Path(path).read_text())

    return load


@dataclass
class _Entry:
    profile: ReferenceProfile | None
    reason: str
    loaded_at: float


class ReferenceProfiles:
    def __init__(self, load: ProfileLoader, retry_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._retry_s = retry_s
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}

    def get(self, model_name: str, model_version: str) -> tuple[ReferenceProfile | None, str]:
        """The version's profile and "loaded", or None and why not."""
        key = (model_name, model_version)
        entry = self._entries.get(key)
        now = self._clock()
        if entry is None or (entry.profile is None and now - entry.loaded_at >= self._retry_s):
            entry = self._fetch(model_name, model_version, now)
            self._entries[key] = entry
        return entry.profile, entry.reason

    def _fetch(self, model_name: str, model_version: str, now: float) -> _Entry:
        try:
            profile = self._load(model_name, model_version)
        except Exception as error:  # the registry's and the artifact store's errors alike
            reason = f"no reference profile: {type(error).__name__}: " \
                     f"{str(error).splitlines()[0][:200] if str(error) else ''}"
            log.warning("reference profile unavailable",
                        extra={"model": model_name[:100], "version": model_version[:40],
                               "error": type(error).__name__})
            return _Entry(None, reason, now)
        return _Entry(profile, "loaded", now)
