"""Running the real helm binary on charts/agogosml and indexing what it rendered.

Reusable outside the chart tests: `Rendered.write_manifests` puts the objects in a folder
for `kubectl apply --dry-run=server`, and `fetch_helm` builds Helm once
(scripts/fetch-helm.sh) and returns its path.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "agogosml"
CI_VALUES_DIR = CHART / "ci"
"""The values test matrix: `ci/<name>-values.yaml`, the convention of prometheus-community's
charts (and of chart-testing, which installs the chart once per file). `.helmignore` keeps
the folder out of the packaged chart."""
CI_VALUES_SUFFIX = "-values.yaml"
MATRIX: tuple[str, ...] = tuple(sorted(path.name.removesuffix(CI_VALUES_SUFFIX)
                                       for path in CI_VALUES_DIR.glob(f"*{CI_VALUES_SUFFIX}")))
"""The matrix's names, e.g. "minimal" for ci/minimal-values.yaml."""
FETCH_HELM = ROOT / "scripts" / "fetch-helm.sh"
RELEASE = "agogosml"
NAMESPACE = "agogosml"

Manifest = dict[str, Any]


class HelmFailed(AssertionError):
    """helm exited non-zero; `stderr` holds its message."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"helm {' '.join(args)} exited {returncode}:\n{stderr}")
        self.returncode = returncode
        self.stderr = stderr


@functools.cache
def fetch_helm() -> Path:
    """Build Helm from the Go module proxy once (minutes the first time), return its path."""
    done = subprocess.run([str(FETCH_HELM)], capture_output=True, text=True, check=False,
                          timeout=1_200)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/fetch-helm.sh failed:\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def values_file(name: str) -> Path:
    """A values file of the test matrix, by name: values_file("shadow") is
    charts/agogosml/ci/shadow-values.yaml."""
    path = CI_VALUES_DIR / f"{name}{CI_VALUES_SUFFIX}"
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def load_values(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(values_file(name).read_text()) or {}
    return loaded


@dataclass(frozen=True)
class Rendered:
    """The objects of one `helm template`, in order, each with the template it came from."""

    text: str
    objects: tuple[Manifest, ...]
    sources: tuple[str, ...] = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> Rendered:
        objects: list[Manifest] = []
        sources: list[str] = []
        for chunk in text.split("\n---"):
            source = ""
            for line in chunk.splitlines():
                if line.startswith("# Source: "):
                    source = line.removeprefix("# Source: ").strip()
                    break
            document = yaml.safe_load(chunk)
            if document is None:
                continue
            if not isinstance(document, dict):
                raise ValueError(f"{source or 'a document'} is not a mapping: {document!r}")
            objects.append(document)
            sources.append(source)
        return cls(text, tuple(objects), tuple(sources))

    def of_kind(self, kind: str) -> list[Manifest]:
        return [item for item in self.objects if item["kind"] == kind]

    def names(self, kind: str) -> set[str]:
        return {name_of(item) for item in self.of_kind(kind)}

    def find(self, kind: str, name: str) -> Manifest | None:
        for item in self.of_kind(kind):
            if name_of(item) == name:
                return item
        return None

    def get(self, kind: str, name: str) -> Manifest:
        found = self.find(kind, name)
        if found is None:
            raise KeyError(f"no {kind} {name}; rendered {kind}s: {sorted(self.names(kind))}")
        return found

    def source_of(self, item: Manifest) -> str:
        for candidate, source in zip(self.objects, self.sources, strict=True):
            if candidate is item:
                return source
        raise KeyError(name_of(item))

    def workloads(self) -> list[Manifest]:
        """Deployments and bare Pods (the helm test pod)."""
        return self.of_kind("Deployment") + self.of_kind("Pod")

    def containers(self, include_init: bool = True) -> Iterator[tuple[Manifest, Manifest]]:
        """(workload, container) for every container of every Deployment and Pod."""
        for workload in self.workloads():
            spec = pod_spec(workload)
            keys = ("initContainers", "containers") if include_init else ("containers",)
            for key in keys:
                for container in spec.get(key) or []:
                    yield workload, container

    def write_manifests(self, folder: Path, include_hooks: bool = False) -> list[Path]:
        """One file per object (for `kubectl apply --dry-run=server -f folder`)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index, item in enumerate(self.objects):
            annotations = item.get("metadata", {}).get("annotations") or {}
            if "helm.sh/hook" in annotations and not include_hooks:
                continue
            path = folder / f"{index:03d}-{item['kind'].lower()}-{name_of(item)}.yaml"
            path.write_text(yaml.safe_dump(item, sort_keys=False))
            paths.append(path)
        return paths


def name_of(item: Manifest) -> str:
    name: str = item["metadata"]["name"]
    return name


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]
    if workload["kind"] == "Pod":
        return spec
    template_spec: Manifest = spec["template"]["spec"]
    return template_spec


def env_of(container: Manifest) -> dict[str, Manifest]:
    """A container's env entries by name (the entry itself: value or valueFrom)."""
    return {entry["name"]: entry for entry in container.get("env") or []}


def env_values(container: Manifest) -> dict[str, str]:
    """A container's plain env values by name (entries from a Secret are left out)."""
    return {name: entry["value"] for name, entry in env_of(container).items()
            if "value" in entry}


def only_container(workload: Manifest) -> Manifest:
    containers: list[Manifest] = pod_spec(workload)["containers"]
    assert len(containers) == 1, f"{name_of(workload)} has {len(containers)} containers"
    return containers[0]


@dataclass(frozen=True)
class Helm:
    """The helm binary on a chart; with a kubeconfig (see `on_cluster`) it also installs
    and upgrades releases, keeping its own config, caches and Kubernetes discovery cache
    under `home` instead of ~/."""

    binary: Path
    chart: Path = CHART
    kubeconfig: Path | None = None
    home: Path | None = None

    def on_cluster(self, kubeconfig: Path, home: Path) -> Helm:
        return replace(self, kubeconfig=kubeconfig, home=home)

    def own_dirs(self) -> dict[str, str]:
        """The variables that keep helm's config, caches and data under `home`."""
        if self.home is None:
            return {}
        return {variable: str(self.home / folder) for variable, folder in (
            ("HELM_CONFIG_HOME", "config"), ("HELM_CACHE_HOME", "cache"),
            ("HELM_DATA_HOME", "data"), ("KUBECACHEDIR", "kube-cache"))}

    def env(self) -> dict[str, str]:
        """The environment helm runs in (also for other programs that run helm)."""
        return {**os.environ, **self.own_dirs()}

    def run(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        cluster = ["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else []
        return subprocess.run([str(self.binary), *args, *cluster], capture_output=True,
                              text=True, check=False, timeout=timeout_s, env=self.env())

    def check(self, *args: str, timeout_s: float = 120) -> str:
        """Run helm, fail with its message unless it succeeds; return what it printed."""
        done = self.run(*args, timeout_s=timeout_s)
        if done.returncode != 0:
            raise HelmFailed(args, done.returncode, done.stderr)
        return done.stdout

    def _value_args(self, values: Sequence[str | Path], sets: Mapping[str, str],
                    set_strings: Mapping[str, str]) -> list[str]:
        args: list[str] = []
        for item in values:
            path = item if isinstance(item, Path) else values_file(item)
            args += ["--values", str(path)]
        for key, value in sets.items():
            args += ["--set", f"{key}={value}"]
        for key, value in set_strings.items():
            args += ["--set-string", f"{key}={value}"]
        return args

    def lint(self, values: Sequence[str | Path] = (), sets: Mapping[str, str] | None = None,
             strict: bool = True) -> subprocess.CompletedProcess[str]:
        args = ["lint", str(self.chart), *self._value_args(values, sets or {}, {})]
        if strict:
            args.append("--strict")
        return self.run(*args)

    def template_run(self, values: Sequence[str | Path] = (),
                     sets: Mapping[str, str] | None = None,
                     set_strings: Mapping[str, str] | None = None,
                     release: str = RELEASE, namespace: str = NAMESPACE,
                     extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
        """`helm template`, whatever its outcome (for the cases that must fail)."""
        return self.run("template", release, str(self.chart), "--namespace", namespace,
                        *self._value_args(values, sets or {}, set_strings or {}), *extra)

    def template(self, values: Sequence[str | Path] = (),
                 sets: Mapping[str, str] | None = None,
                 set_strings: Mapping[str, str] | None = None,
                 release: str = RELEASE, namespace: str = NAMESPACE,
                 extra: Sequence[str] = ()) -> Rendered:
        done = self.template_run(values, sets, set_strings, release, namespace, extra)
        if done.returncode != 0:
            raise HelmFailed(["template", *[str(v) for v in values]], done.returncode,
                             done.stderr)
        return Rendered.parse(done.stdout)

    def with_files(self, workdir: Path, files: Mapping[str, str]) -> Helm:
        """A copy of the chart with extra files (paths relative to the chart), to render
        what `helm template` alone does not, such as NOTES.txt."""
        copy = workdir / "chart"
        shutil.copytree(self.chart, copy)
        for relative, content in files.items():
            (copy / relative).write_text(content)
        return replace(self, chart=copy)

    def notes(self, workdir: Path, values: Sequence[str | Path] = (),
              sets: Mapping[str, str] | None = None,
              release: str = RELEASE, namespace: str = NAMESPACE) -> str:
        """NOTES.txt as `helm install` would print it. `helm install --dry-run` needs a
        cluster, so a copy of the chart renders NOTES.txt with `tpl` into a ConfigMap."""
        copy = self.with_files(workdir, {
            "notes-under-test.txt": (self.chart / "templates" / "NOTES.txt").read_text(),
            "templates/notes-under-test.yaml":
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-under-test\n"
                "data:\n  notes: {{ tpl (.Files.Get \"notes-under-test.txt\") . | quote }}\n",
        })
        rendered = copy.template(values, sets, release=release, namespace=namespace)
        notes: str = rendered.get("ConfigMap", "notes-under-test")["data"]["notes"]
        return notes
