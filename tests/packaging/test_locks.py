"""The locks (requirements/*.txt, written by `make lock`) are in step with pyproject.toml.

Each install target has one: core.txt (the output writer's image), reader.txt (the input
reader's: the core plus the privacy stage), app.txt (the app's image), rollout.txt (the rollout
tool in CI), spark.txt (the Spark image: pyspark with the app's and the reader's libraries),
dev.txt (`make install`: everything), build.txt (the build backend) and clients.txt (`make
clients`: the OIP clients that cannot share dev.txt, kserve). Checked
without the network: every direct dependency of a target is in its lock at a version its
specifier allows, every pin is `==` with hashes, the lock lists no direct dependency
pyproject.toml no longer has, and the locks agree with each other on every version they share.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
REQUIREMENTS = ROOT / "requirements"
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = canonicalize_name(PYPROJECT["project"]["name"])
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
HEAVY = ("mlflow", "mlflow-skinny", "scikit-learn", "pandas", "numpy", "scipy", "kubernetes")
"""What the reader and writer must not carry (numpy and scipy come with the others)."""

TARGETS = {"core": (), "reader": ("privacy",), "app": ("app",), "monitor": ("monitor",),
           "rollout": ("rollout",), "spark": ("spark",), "dev": ("dev",)}
"""Each lock compiled from pyproject.toml, and the extras it is compiled with."""


@dataclass
class Pin:
    version: str
    hashes: set[str] = field(default_factory=set)
    via: list[str] = field(default_factory=list)


def parse_lock(name: str) -> dict[str, Pin]:
    """A uv/pip-tools lock: `name==version \\`, its `--hash=` lines, then `# via` lines."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in (REQUIREMENTS / f"{name}.txt").read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not line[0].isspace() and not line.startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*\\?", stripped)
            assert match, f"{name}.txt: not pinned with ==: {line!r}"
            package = canonicalize_name(match.group(1))
            assert package not in pins, f"{name}.txt: {package} twice"
            current = pins[package] = Pin(match.group(2))
        elif stripped.startswith("--hash="):
            assert current is not None, line
            current.hashes.add(stripped.removeprefix("--hash=").removesuffix("\\").strip())
        elif current is not None and stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            text = text.removeprefix("via").strip()
            if text:
                current.via.append(text)
    return pins


def direct(extras: tuple[str, ...]) -> list[Requirement]:
    """The target's direct dependencies: the core plus its extras, self-references expanded."""
    requirements = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    pending = list(extras)
    seen: set[str] = set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in EXTRAS[extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == PROJECT:
                pending.extend(requirement.extras)
            else:
                requirements.append(requirement)
    return requirements


def input_requirements(name: str) -> list[Requirement]:
    """requirements/<name>.in, the input of a lock not compiled from pyproject.toml."""
    lines = (REQUIREMENTS / f"{name}.in").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def build_requirements() -> list[Requirement]:
    return input_requirements("build")


def all_locks() -> list[str]:
    return [*TARGETS, "build", "clients"]


def test_there_is_a_lock_per_target_and_nothing_else() -> None:
    assert sorted(p.stem for p in REQUIREMENTS.glob("*.txt")) == sorted(all_locks())


@pytest.mark.parametrize("lock", all_locks())
def test_every_pin_is_exact_and_hashed(lock: str) -> None:
    pins = parse_lock(lock)
    assert pins
    for package, pin in pins.items():
        assert pin.hashes, f"{lock}.txt: {package} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin.hashes), package
        assert pin.via, f"{lock}.txt: {package} says nothing about why it is there"
    header = (REQUIREMENTS / f"{lock}.txt").read_text().splitlines()[:2]
    assert header[1].strip("# ") == "make lock", "regenerate with `make lock`, not by hand"


@pytest.mark.parametrize("lock", list(TARGETS))
def test_lock_holds_every_direct_dependency_of_its_target(lock: str) -> None:
    pins = parse_lock(lock)
    for requirement in direct(TARGETS[lock]):
        package = canonicalize_name(requirement.name)
        assert package in pins, f"{lock}.txt lacks {requirement}: run `make lock`"
        assert requirement.specifier.contains(pins[package].version, prereleases=True), (
            f"{lock}.txt pins {package}=={pins[package].version}, "
            f"pyproject.toml wants {requirement}: run `make lock`")


@pytest.mark.parametrize("lock", list(TARGETS))
def test_lock_has_no_direct_dependency_pyproject_dropped(lock: str) -> None:
    """uv marks what pyproject.toml asked for itself; those are exactly the target's."""
    marked = {package for package, pin in parse_lock(lock).items()
              if f"{PROJECT} (pyproject.toml)" in pin.via}
    assert marked == {canonicalize_name(r.name) for r in direct(TARGETS[lock])}


def test_build_lock_holds_the_build_backend() -> None:
    pins = parse_lock("build")
    wanted = build_requirements()
    backend = {canonicalize_name(Requirement(r).name): Requirement(r)
               for r in PYPROJECT["build-system"]["requires"]}
    listed = {canonicalize_name(r.name): r for r in wanted}
    for package, requirement in backend.items():
        assert str(listed[package].specifier) == str(requirement.specifier), (
            f"requirements/build.in and pyproject.toml's build-system disagree on {package}")
    assert "editables" in listed, "hatchling's editable build (make install) needs it"
    for requirement in wanted:
        pin = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin.version, prereleases=True), requirement
        assert "-r requirements/build.in" in pin.via
    assert {p for p, pin in pins.items() if "-r requirements/build.in" in pin.via} == set(listed)


@pytest.mark.parametrize("lock", ["core", "reader", "app", "rollout", "build"])
def test_locks_agree_with_the_dev_lock(lock: str) -> None:
    """What the tests run against is what the images and the rollout tool get."""
    dev = parse_lock("dev")
    for package, pin in parse_lock(lock).items():
        if package in dev:
            assert pin.version == dev[package].version, f"{lock}.txt: {package}"
            assert pin.hashes == dev[package].hashes, f"{lock}.txt: {package}"


def test_clients_lock_holds_exactly_what_clients_in_asks_for() -> None:
    """Compiled on its own (kserve's pins disagree with dev.txt's), from clients.in alone."""
    pins = parse_lock("clients")
    wanted = input_requirements("clients")
    for requirement in wanted:
        pin = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin.version, prereleases=True), requirement
        assert "-r requirements/clients.in" in pin.via
        assert any(s.operator in {"<", "<=", "==", "~="} for s in requirement.specifier), (
            f"clients.in: give {requirement} an upper bound")
    assert {p for p, pin in pins.items() if "-r requirements/clients.in" in pin.via} == {
        canonicalize_name(r.name) for r in wanted}


def test_reader_and_writer_lock_carries_no_model_or_cluster_library() -> None:
    assert not set(HEAVY) & set(parse_lock("core"))
    # spaCy needs numpy; nothing else heavy comes with the reader's privacy stage.
    assert not (set(HEAVY) - {"numpy"}) & set(parse_lock("reader"))


def test_app_lock_carries_no_cluster_library() -> None:
    assert "kubernetes" not in parse_lock("app")


def test_rollout_lock_can_resolve_model_aliases() -> None:
    assert {"kubernetes", "mlflow"} <= set(parse_lock("rollout"))


def test_dev_lock_is_the_full_test_environment() -> None:
    dev = set(parse_lock("dev"))
    for lock in ("core", "reader", "app", "rollout"):
        assert set(parse_lock(lock)) <= dev, lock


def test_every_dependency_has_an_upper_bound() -> None:
    texts = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["build-system"]["requires"],
             *(text for extra in EXTRAS.values() for text in extra)]
    for text in texts:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) == PROJECT:
            continue
        bounded = any(s.operator in {"<", "<=", "==", "~="} for s in requirement.specifier)
        assert bounded, f"{text}: give it an upper bound (its next major release)"


def test_core_has_only_what_the_reader_and_writer_import() -> None:
    names = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    assert not names & set(HEAVY)
