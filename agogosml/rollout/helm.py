"""The Helm release the rollout tool changes, through the helm binary."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agogosml.errors import AgogosmlError

log = logging.getLogger(__name__)


class HelmError(AgogosmlError):
    """helm refused or failed; its message is kept."""


@dataclass(frozen=True)
class HelmRelease:
    name: str
    namespace: str
    chart: str
    helm: str = "helm"
    kubeconfig: str | None = None
    timeout_s: int = 300

    def _run(self, *args: str) -> str:
        binary = shutil.which(self.helm) or self.helm
        command = [binary, *args, "--namespace", self.namespace]
        if self.kubeconfig:
            command += ["--kubeconfig", self.kubeconfig]
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=self.timeout_s + 30)
        if done.returncode != 0:
            raise HelmError(f"helm {args[0]} failed: {done.stderr.strip()[:2000]}")
        return done.stdout

    def values(self) -> dict[str, Any]:
        """The release's effective values (defaults merged with every --set so far)."""
        values: dict[str, Any] = json.loads(
            self._run("get", "values", self.name, "--all", "--output", "json"))
        return values

    def upgrade(self, changes: Mapping[str, str | bool]) -> None:
        """Booleans go through --set (typed); strings through --set-string, so a tag like
        `1e3` or `true` stays a string."""
        sets = [item for key, value in changes.items() for item in (
            ("--set", f"{key}={str(value).lower()}") if isinstance(value, bool)
            else ("--set-string", f"{key}={value}"))]
        log.info("helm upgrade", extra={"release": self.name, "changes": dict(changes)})
        self._run("upgrade", self.name, self.chart, "--reuse-values", *sets,
                  "--timeout", f"{self.timeout_s}s")

    def revision(self) -> int:
        """The release's current revision (what a rollback goes back to)."""
        status = json.loads(self._run("status", self.name, "--output", "json"))
        revision: int = status["version"]
        return revision

    def rollback(self, revision: int) -> None:
        """Back to `revision`'s chart and values, as a new revision."""
        log.info("helm rollback", extra={"release": self.name, "revision": revision})
        self._run("rollback", self.name, str(revision), "--timeout", f"{self.timeout_s}s")
