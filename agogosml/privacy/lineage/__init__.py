"""Subject lineage: which training runs, and so which model versions, used a pseudonymized
subject. Each run's dataset digest and subjects are kept in an index in the store (SQLite by
default, PostgreSQL in clusters), never in MLflow tags, so the question stays fast at tens of
millions of subject-run rows and a subject can be forgotten."""

from agogosml.privacy.lineage.index import (
    LineageIndex,
    RunRecord,
    SqlLineageIndex,
    VersionUse,
    open_lineage_index,
)
from agogosml.privacy.lineage.subjects import (
    InvalidSubjectError,
    LineageError,
    check_subject,
    dataset_subjects,
)

__all__ = [
    "InvalidSubjectError",
    "LineageError",
    "LineageIndex",
    "RunRecord",
    "SqlLineageIndex",
    "VersionUse",
    "check_subject",
    "dataset_subjects",
    "open_lineage_index",
]
