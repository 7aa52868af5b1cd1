"""PII canaries: known personal values planted in records, and a search for them in clear in
whatever a test gathers (files, topics, metrics, logs), in the encodings a leak would take:
as they are, JSON-escaped, URL-encoded and base64 at each of the three alignments."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Canary:
    field: str
    value: str

    def forms(self) -> Iterator[bytes]:
        raw = self.value.encode()
        yield raw
        yield json.dumps(self.value)[1:-1].encode()
        yield urllib.parse.quote(self.value).encode()
        for shift in range(3):
            # base64 of the value inside longer bytes: the first group (when the value does
            # not start one) and the last depend on the neighbours, so they are left out.
            encoded = base64.b64encode(b"\0" * shift + raw)
            inner = encoded[4 if shift else 0:-4]
            if len(inner) >= 8:
                yield inner


def found_in(data: bytes, canaries: Iterable[Canary]) -> list[str]:
    """The canaries (field=value) that occur in `data` in any of their forms."""
    return [f"{canary.field}={canary.value}" for canary in canaries
            if any(form in data for form in canary.forms())]


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (path for path in sorted(root.rglob("*")) if path.is_file())


def leaks(places: dict[str, bytes], canaries: Iterable[Canary]) -> dict[str, list[str]]:
    """Per place (a file, a topic, a metrics page), the canaries found there in clear."""
    chosen = list(canaries)
    found = {place: found_in(data, chosen) for place, data in places.items()}
    return {place: hits for place, hits in found.items() if hits}
