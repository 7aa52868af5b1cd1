"""The model registry's side of forgetting a subject, on MLflow.

- retrain: only when the champion used the subject (an older version that did is retired,
  not replaced). The model loop's own retrain runs with the `erasure` trigger on the purged
  snapshot; a sharded champion lends its untouched shards, so only the shards that held the
  subject are fitted again. The result goes through the same gate as every challenger.
- promote: challenger -> champion, as `agogosml promote` does (on a cluster the rollout tool
  then rolls the new champion out, blue/green).
- retire: each tainted version's model and its run's artifacts (holdout, profile, shard
  models) are deleted, its aliases removed (so no rollback can bring it back) and it is tagged
  `agogosml.retired`; the registry keeps the version's entry as history.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from agogosml.modelloop.errors import ModelLoopError, RetrainInProgressError
from agogosml.modelloop.registry import ALIASES, CHALLENGER, CHAMPION, promote
from agogosml.modelloop.retrain import LoopConfig, retrain
from agogosml.modelloop.tracking import TAG_PREFIX, alias_version, connect
from agogosml.privacy.forget.process import ForgetBlockedError

log = logging.getLogger(__name__)

RETIRED_TAG = f"{TAG_PREFIX}retired"


@dataclass
class MlflowModels:
    loop: LoopConfig
    """The model loop's configuration; its training dataset is the purged snapshot."""

    @property
    def model_name(self) -> str:
        return self.loop.tracking.model_name

    def retrain(self, tainted: Sequence[dict[str, str]]) -> dict[str, Any]:
        connect(self.loop.tracking)
        champion = alias_version(self.model_name, CHAMPION)
        uses = {(use["model_name"], use["model_version"]): use["run_id"] for use in tainted}
        champion_run = uses.get((self.model_name, champion or ""))
        if champion_run is None:
            return {"skipped": f"the champion ({self.model_name} v{champion}) did not use "
                               "the subject"}
        try:
            # A sharded loop reuses the champion's untouched shards by itself.
            result = retrain("erasure", self.loop)
        except RetrainInProgressError as busy:
            raise ForgetBlockedError(str(busy)) from None
        except ModelLoopError as error:  # a dataset or model the loop cannot train on
            raise ForgetBlockedError(f"the retrain failed: {error}") from None
        if result.registered_version is None:
            raise ForgetBlockedError(
                f"the model retrained without the subject failed its gate "
                f"({result.gate.summary()}); run {result.run_id}")
        return {"run_id": result.run_id, "version": result.registered_version,
                "replaces": champion, "roc_auc": round(result.metrics["roc_auc"], 4),
                "gate": result.gate.summary(), "fitted_shards": list(result.fitted_shards),
                "reused_shards": list(result.reused_shards)}

    def promote(self, version: str) -> dict[str, Any]:
        connect(self.loop.tracking)
        if alias_version(self.model_name, CHAMPION) == version:
            return {"champion": version, "already": True}
        if alias_version(self.model_name, CHALLENGER) != version:
            raise ForgetBlockedError(f"v{version} is no longer the challenger: promote it "
                                     "by hand, then run forget again")
        return {"aliases": promote(self.loop.tracking)}

    def retire(self, tainted: Sequence[dict[str, str]], keep: str | None) -> dict[str, Any]:
        connect(self.loop.tracking)
        client = MlflowClient()
        retired: list[str] = []
        for use in tainted:
            name, version = use["model_name"], use["model_version"]
            if name == self.model_name and version == keep:
                continue
            if name == self.model_name and alias_version(name, CHAMPION) == version:
                raise ForgetBlockedError(f"{name} v{version} used the subject and is still "
                                         "champion")
            for alias in ALIASES:
                if alias_version(name, alias) == version:
                    client.delete_registered_model_alias(name, alias)
            _delete(client.get_model_version_download_uri(name, version))
            _delete(client.get_run(use["run_id"]).info.artifact_uri)
            client.set_model_version_tag(name, version, RETIRED_TAG,
                                         "erasure: artifacts deleted")
            retired.append(f"{name}/{version}")
        return {"retired": retired}


def _delete(artifact_uri: str) -> None:
    """Deletes everything under an artifact location; nothing there is not an error (a step
    resumed after a crash finds it deleted)."""
    repository: Any = get_artifact_repository(artifact_uri)
    try:
        repository.delete_artifacts()
    except (FileNotFoundError, MlflowException) as error:
        log.info("artifacts already gone", extra={"error": type(error).__name__})
