"""The page's static files, read once from the package into memory.

Only the files shipped in `static/` can be served, by exact name: a request never becomes
a path on disk, so no name can reach outside the folder."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""Defence in depth: the page renders data as text, and even if it did not, no inline
script or handler, and nothing from another origin, could run or load."""


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str


def load_assets() -> dict[str, Asset]:
    """Every file under static/ by its relative name ("js/charts.js")."""
    assets: dict[str, Asset] = {}
    root = resources.files(__package__).joinpath("static")

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                walk(entry, f"{name}/")
                continue
            suffix = name[name.rfind("."):]
            if suffix in MEDIA_TYPES:
                assets[name] = Asset(entry.read_bytes(), MEDIA_TYPES[suffix])

    walk(root, "")
    return assets
