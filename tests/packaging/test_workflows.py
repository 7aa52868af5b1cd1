"""The GitHub Actions workflows users get: valid for actionlint, immutable image tags,
and deployment only through the rollout tool with its automatic rollback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agogosml.services.registry import SERVICES as REGISTRY

ROOT = Path(__file__).parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = ("actionlint", "github.com/rhysd/actionlint/cmd/actionlint", "v1.7.12")


@pytest.fixture(scope="session")
def actionlint() -> str:
    built = subprocess.run([str(ROOT / "scripts" / "go-tool.sh"), *ACTIONLINT],
                           capture_output=True, text=True, check=True, timeout=900)
    return built.stdout.strip().splitlines()[-1]


def load(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    return document


def test_actionlint_accepts_every_workflow(actionlint: str) -> None:
    assert WORKFLOWS, "no workflows found"
    checked = subprocess.run([actionlint, "-no-color", *map(str, WORKFLOWS)],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_images_are_tagged_immutably() -> None:
    steps = load("ci.yml")["jobs"]["images"]["steps"]
    build = next(step for step in steps if str(step.get("uses", "")).startswith(
        "docker/build-push-action"))
    tags = [tag.strip() for tag in build["with"]["tags"].splitlines() if tag.strip()]
    assert tags
    assert all("github.sha" in tag for tag in tags), "every tag carries the git sha"
    assert not any(tag.endswith(":latest") for tag in tags)


def _step_outputs(step: dict[str, Any], env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Run a `run:` step as GitHub does (bash -e, from the checkout), return its outputs."""
    outputs = tmp_path / "github-output"
    outputs.write_text("")
    python = Path(sys.executable).parent  # its python3 stands in for the runner's
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, check=True, timeout=60,
                   env={**os.environ, "PATH": f"{python}:{os.environ['PATH']}",
                        "GITHUB_OUTPUT": str(outputs), **env})
    return dict(line.split("=", 1) for line in outputs.read_text().splitlines())


def test_builds_cover_the_services_with_their_targets(tmp_path: Path) -> None:
    """One build per registered service, of its target of the root Dockerfile, pushed
    under its image's name."""
    job = load("ci.yml")["jobs"]["images"]
    matrix = job["strategy"]["matrix"]["service"]
    assert matrix == [service.name for service in REGISTRY]
    build = next(step for step in job["steps"]
                 if str(step.get("uses", "")).startswith("docker/build-push-action"))
    assert build["with"]["file"] == "Dockerfile"
    assert (ROOT / build["with"]["context"] / build["with"]["file"]).is_file()
    target = re.fullmatch(r"\$\{\{ steps\.(\w+)\.outputs\.target \}\}",
                          build["with"]["target"])
    assert target, build["with"]["target"]
    [step] = [step for step in job["steps"] if step.get("id") == target.group(1)]
    tags = [tag.strip() for tag in build["with"]["tags"].splitlines() if tag.strip()]
    for service in REGISTRY:
        env = {key: value.replace("${{ matrix.service }}", service.name)
               for key, value in step.get("env", {}).items()}
        outputs = _step_outputs(step, env, tmp_path)
        assert outputs["target"] == service.target
        assert outputs["image"] == service.image
        for tag in tags:
            image = tag.replace(f"${{{{ steps.{target.group(1)}.outputs.image }}}}",
                                service.image).rpartition(":")[0]
            assert image == f"${{{{ env.REGISTRY }}}}/{service.image}", tag


def test_deploys_only_through_the_rollout_tool_after_tests_and_images() -> None:
    deploy = load("ci.yml")["jobs"]["deploy"]
    assert set(deploy["needs"]) == {"images", "chart"}
    commands = " ".join(step.get("run", "") for step in deploy["steps"])
    assert "agogosml rollout deploy" in commands
    assert "--promote" in commands
    assert "kubectl" not in commands, "no hand-made switching outside the tool"
    assert load("ci.yml")["jobs"]["images"]["needs"] == "test"


def test_manual_promote_and_rollback() -> None:
    workflow = load("release-control.yml")
    # PyYAML reads the `on:` key as the boolean True (YAML 1.1).
    trigger = workflow.get("on") or workflow[True]
    options = trigger["workflow_dispatch"]["inputs"]["action"]["options"]
    assert {"promote", "rollback"} <= set(options)


USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?:\s+#\s*(?P<comment>.*))?$")


def uses_lines() -> list[tuple[str, int, str, str]]:
    """Every `uses:` of every workflow: file, line number, reference, trailing comment."""
    found = []
    for path in WORKFLOWS:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = USES.match(line)
            if match:
                found.append((path.name, number, match["ref"], match["comment"] or ""))
    return found


def test_every_action_is_pinned_to_a_commit_with_its_release_noted() -> None:
    """A tag can be moved to other code; a commit sha cannot. The comment says which
    release the sha is, for reviewers and update tools."""
    found = uses_lines()
    assert len(found) >= 10, found
    for name, number, ref, comment in found:
        action, _, version = ref.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", version), f"{name}:{number}: pin {ref} by sha"
        assert re.fullmatch(r"v\d+\.\d+\.\d+", comment), (
            f"{name}:{number}: note the release after the sha (`# vX.Y.Z`), not {comment!r}")
        assert re.fullmatch(r"[\w.-]+/[\w./-]+", action), ref


def test_each_action_is_pinned_to_one_commit_everywhere() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for _, _, ref, comment in uses_lines():
        action, _, sha = ref.partition("@")
        pins.setdefault(action.lower(), set()).add((sha, comment))
    assert {action: shas for action, shas in pins.items() if len(shas) > 1} == {}


def test_every_pip_install_comes_from_a_hashed_lock() -> None:
    """The rollout tool (and anything else) is installed from its lock with hashes checked,
    and the project itself without dependencies and without fetching a build backend."""
    installs = []
    for path in WORKFLOWS:
        for job in load(path.name)["jobs"].values():
            for step in job["steps"]:
                for line in str(step.get("run", "")).splitlines():
                    if re.search(r"\bpip install\b", line):
                        installs.append(line.split())
    assert installs
    for words in installs:
        if "-r" in words:
            assert "--require-hashes" in words, words
            locks = [words[n + 1] for n, word in enumerate(words) if word == "-r"]
            assert all((ROOT / lock).is_file() for lock in locks), locks
        else:
            assert {"--no-deps", "--no-build-isolation"} <= set(words), words
    deploy = " ".join(str(step.get("run", "")) for step in load("ci.yml")["jobs"]["deploy"]
                      ["steps"])
    assert "requirements/rollout.txt" in deploy


def test_pip_caches_are_keyed_on_the_locks() -> None:
    for path in WORKFLOWS:
        for job in load(path.name)["jobs"].values():
            for step in job["steps"]:
                if str(step.get("uses", "")).startswith("actions/setup-python@"):
                    assert step["with"].get("cache-dependency-path") == "requirements/*.txt"
