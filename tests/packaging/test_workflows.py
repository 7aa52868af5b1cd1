"""The GitHub Actions workflows users get: valid for actionlint, immutable image tags,
and deployment only through the rollout tool with its automatic rollback."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def test_builds_cover_the_three_services() -> None:
    matrix = load("ci.yml")["jobs"]["images"]["strategy"]["matrix"]["service"]
    assert sorted(matrix) == ["app", "input_reader", "output_writer"]
    build = next(step for step in load("ci.yml")["jobs"]["images"]["steps"]
                 if "file" in step.get("with", {}))
    for service in matrix:
        dockerfile = build["with"]["file"].replace("${{ matrix.service }}", service)
        assert (ROOT / dockerfile).is_file(), f"{dockerfile} is missing"


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
