"""Removing a subject's rows from training snapshots: CSV and JSON-lines files, rewritten
next to themselves and swapped in atomically, so a crash leaves the old file or the new one,
never half of one. Rows are copied as they are (no parsing of other columns), so the rest of
the file stays byte for byte what it was."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import orjson

from agogosml.privacy.errors import PrivacyError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


class SnapshotError(PrivacyError):
    """A training snapshot cannot be read or rewritten; the message names the file."""


@contextmanager
def _replacing(path: Path) -> Iterator[IO[str]]:
    """A temporary file beside `path` that replaces it when the block ends without error."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _purge_csv(path: Path, column: str, subject: str) -> int:
    removed = 0
    with path.open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        header = next(reader, None)
        if header is None:
            return 0
        if column not in header:
            raise SnapshotError(f"{path}: no subject column {column!r}")
        index = header.index(column)
        rows = [row for row in reader]
    kept = [row for row in rows if not (len(row) > index and row[index] == subject)]
    removed = len(rows) - len(kept)
    if removed:
        with _replacing(path) as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(kept)
    return removed


def _purge_jsonl(path: Path, column: str, subject: str) -> int:
    lines = path.read_bytes().splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            row = orjson.loads(line) if line.strip() else None
        except orjson.JSONDecodeError:
            raise SnapshotError(f"{path}: a line is not JSON") from None
        if isinstance(row, dict) and row.get(column) == subject:
            continue
        kept.append(line)
    removed = len(lines) - len(kept)
    if removed:
        with _replacing(path) as out:
            out.write(b"".join(kept).decode("utf-8"))
    return removed


def purge_snapshot(path: Path, column: str, subject: str) -> int:
    """Rows of `subject` removed from one snapshot file; 0 if it had none (or is gone)."""
    if not path.exists():
        return 0
    try:
        if path.suffix.lower() in JSONL_SUFFIXES:
            return _purge_jsonl(path, column, subject)
        return _purge_csv(path, column, subject)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SnapshotError(f"{path}: cannot rewrite ({type(error).__name__})") from None
