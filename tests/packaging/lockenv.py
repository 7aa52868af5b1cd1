"""Virtual environments made from the locks alone, as the images make theirs.

`lock_env([...])` installs lock files with `pip install --require-hashes` into a virtualenv
cached under ~/.cache/agogosml/envs/<sha of the locks and the interpreter> (never in the
clone), so only the first run downloads and installs; later runs find it complete. An env
is complete once its `.complete` marker exists, and is never changed after that: the project
itself is installed per run next to it (`install_project`), so a cached env never holds a
stale copy of the code. The project's wheel is built the way the images build it: by the
build lock's hatchling, without build isolation.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).parents[2]
REQUIREMENTS = ROOT / "requirements"
ENVS = Path(os.environ.get("AGOGOSML_ENVS_DIR", Path.home() / ".cache" / "agogosml" / "envs"))
BUILD_TIMEOUT_S = 1_200.0
"""A cold build of the app's env downloads a few hundred MB: allow for a slow registry."""


def lock_paths(names: Sequence[str]) -> list[Path]:
    return [REQUIREMENTS / f"{name}.txt" for name in names]


def env_key(locks: Sequence[Path]) -> str:
    digest = hashlib.sha256(f"{sys.version}\n{sys.platform}\n".encode())
    for lock in locks:
        digest.update(f"{lock.name}\n".encode())
        digest.update(lock.read_bytes())
    return digest.hexdigest()[:20]


def env_python(env: Path) -> Path:
    return env / "bin" / "python"


def site_packages(env: Path) -> Path:
    [found] = (env / "lib").glob("python3*/site-packages")
    return found


@contextlib.contextmanager
def _exclusive(path: Path, timeout_s: float) -> Iterator[None]:
    """Another process (a second test run, the size report) may be building the same env."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} stayed locked for {timeout_s:.0f} s") from None
                time.sleep(0.5)  # polling the lock another process holds
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: Sequence[str | Path], timeout_s: float = BUILD_TIMEOUT_S) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                            timeout=timeout_s, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n"
                           f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


def lock_env(names: Sequence[str]) -> Path:
    """A virtualenv holding exactly requirements/<name>.txt for each name (and pip)."""
    locks = lock_paths(names)
    env = ENVS / env_key(locks)
    marker = env / ".complete"
    if marker.exists():
        return env
    with _exclusive(ENVS / f"{env.name}.lock", BUILD_TIMEOUT_S):
        if marker.exists():
            return env
        shutil.rmtree(env, ignore_errors=True)  # a build that was interrupted
        _run([sys.executable, "-m", "venv", env])
        requirements: list[str | Path] = []
        for lock in locks:
            requirements += ["-r", lock]
        _run([env_python(env), "-m", "pip", "install", "--quiet", "--require-hashes",
              *requirements])
        marker.write_text("\n".join(lock.name for lock in locks) + "\n")
    return env


def build_wheel(out_dir: Path) -> Path:
    """The project's wheel, built by the build lock's backend without build isolation
    (as the Dockerfile's wheel stage builds it): nothing outside the locks is fetched."""
    builder = lock_env(["build"])
    _run([env_python(builder), "-m", "pip", "wheel", "--quiet", "--no-deps",
          "--no-build-isolation", "--wheel-dir", out_dir, ROOT])
    [wheel] = out_dir.glob("agogosml-*.whl")
    return wheel


def install_project(wheel: Path, env: Path, target: Path) -> None:
    """Install the project (no dependencies) into `target`, to be put on PYTHONPATH when
    running the env's interpreter: the cached env itself stays as its lock made it."""
    _run([env_python(env), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
          "--target", target, wheel])

