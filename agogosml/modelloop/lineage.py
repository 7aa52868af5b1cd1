"""Subject lineage as the model loop keeps it (agogosml.privacy.lineage): each training run
records its dataset digest and the subjects in its dataset, each registration records the
version its run became.

The index is the one passed in, else the one `Tracking.lineage_url` names (opened for the
call), else none: then nothing is recorded and the run is tagged so. Lineage is never
optional once asked for: a run whose subjects cannot be recorded fails, a run recorded in
an index is not registered without recording the version there, and a version whose
lineage cannot be recorded is deleted again before any alias points to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mlflow.entities import Run

from agogosml.modelloop.errors import ModelLoopError
from agogosml.modelloop.tracking import TAG_PREFIX, Tracking

if TYPE_CHECKING:  # the privacy package loads only where lineage is configured
    import pandas as pd

    from agogosml.privacy.lineage import LineageIndex

LINEAGE_TAG = f"{TAG_PREFIX}lineage"
RECORDED = "recorded"
NOT_RECORDED = "not recorded: no lineage index configured"


class LineageRecordError(ModelLoopError):
    """The lineage index could not be opened or refused a record; nothing that depends on
    the record (a finished run, a registered version) was left behind."""


@contextlib.contextmanager
def lineage_index(tracking: Tracking,
                  given: LineageIndex | None = None) -> Iterator[LineageIndex | None]:
    """`given`, else the index at `tracking.lineage_url` (closed afterwards), else None."""
    if given is not None or tracking.lineage_url is None:
        yield given
        return
    from agogosml.privacy.lineage import open_lineage_index

    try:
        index = open_lineage_index(tracking.lineage_url)
    except Exception as error:  # any backend's failure; the URL may hold a password
        raise LineageRecordError(f"the lineage index cannot be opened: {_reason(error)}") \
            from error
    with index:
        yield index


def training_subjects(frame: pd.DataFrame, column: str | None) -> list[str]:
    """The dataset's subjects as the lineage index takes them, or why they cannot be."""
    from agogosml.privacy.lineage import LineageError, dataset_subjects

    if column is None:
        raise LineageRecordError("lineage is configured but the dataset spec names no "
                                 "subject column")
    try:
        return dataset_subjects(frame, column)
    except LineageError as error:
        raise LineageRecordError(f"the dataset's subjects cannot be recorded: {error}") \
            from error


def record_training(index: LineageIndex, run_id: str, model_name: str, dataset_digest: str,
                    subjects: list[str]) -> int:
    try:
        return index.record_run(run_id, model_name, dataset_digest, subjects)
    except Exception as error:
        raise LineageRecordError(f"the lineage of run {run_id} was not recorded, so the run "
                                 f"failed: {_reason(error)}") from error


def require_lineage(run: Run, index: LineageIndex | None) -> None:
    """Refuses to register, without an index, a run whose subjects are in one."""
    if index is None and run.data.tags.get(LINEAGE_TAG, "").startswith(RECORDED):
        raise LineageRecordError(
            f"run {run.info.run_id} recorded its subjects in a lineage index: register it "
            "with that index (--lineage-url or AGOGOSML_LINEAGE_URL) so its version is "
            "recorded too")


def record_version(index: LineageIndex, run_id: str, model_name: str, version: str) -> None:
    try:
        index.record_version(run_id, model_name, version)
    except Exception as error:
        raise LineageRecordError(f"version {version} of {model_name} (run {run_id}) has no "
                                 f"lineage record: {_reason(error)}") from error


def _reason(error: BaseException) -> str:
    first = (str(error).splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
