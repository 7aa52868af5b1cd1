"""Asking the index from the command line and over HTTP (a real uvicorn server)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from agogosml.privacy.cli import add_parser
from agogosml.privacy.lineage import LineageError, SqlLineageIndex, open_lineage_index
from agogosml.privacy.lineage.router import lineage_router
from agogosml.web.auth import AuthMetrics
from agogosml.web.errors import install_error_handlers
from tests.servers import PIPELINE, PIPELINE_AUTH, run_server

SUBJECT = "ps_ä/b c"  # a slash, a space and non-ASCII travel in the URL path


def record_history(index: SqlLineageIndex) -> None:
    index.record_run("run-a", "fraud", "sha256:aaa", [SUBJECT, "ps_other"])
    index.record_version("run-a", "fraud", "3")


@pytest.fixture
def url(index: SqlLineageIndex) -> Iterator[str]:
    record_history(index)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(lineage_router(index, PIPELINE, AuthMetrics(CollectorRegistry())))
    with run_server(app) as base:
        yield base


def test_the_route_answers_the_subjects_versions_and_runs(url: str) -> None:
    response = httpx.get(f"{url}/v1/gdpr/lineage/{quote(SUBJECT, safe='')}",
                         headers=PIPELINE_AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["subject"] == SUBJECT
    assert body["versions"] == [{"model_name": "fraud", "model_version": "3",
                                 "run_id": "run-a", "dataset_digest": "sha256:aaa"}]
    assert [run["run_id"] for run in body["runs"]] == ["run-a"]


def test_an_unknown_subject_has_no_versions(url: str) -> None:
    response = httpx.get(f"{url}/v1/gdpr/lineage/ps_nobody", headers=PIPELINE_AUTH)
    assert response.status_code == 200
    assert response.json()["versions"] == []


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer not-the-token-0123456789"}])
def test_without_an_accepted_token_the_route_answers_401(url: str,
                                                         headers: dict[str, str]) -> None:
    response = httpx.get(f"{url}/v1/gdpr/lineage/{quote(SUBJECT, safe='')}", headers=headers)
    assert response.status_code == 401
    assert "gdpr" in response.headers["www-authenticate"]
    assert "run-a" not in response.text


def test_a_subject_no_backend_can_hold_is_a_bad_request(url: str) -> None:
    response = httpx.get(f"{url}/v1/gdpr/lineage/{'x' * 129}", headers=PIPELINE_AUTH)
    assert response.status_code == 400
    assert "at most 128" in response.json()["error"]


def test_the_cli_prints_the_lineage_as_json(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    store_url = f"sqlite:///{tmp_path}/lineage.db"
    with open_lineage_index(store_url) as index:
        record_history(index)
    parser = argparse.ArgumentParser(prog="agogosml")
    add_parser(parser.add_subparsers(dest="command", required=True))

    args = parser.parse_args(["gdpr", "lineage", SUBJECT, "--store-url", store_url])
    args.run(args)

    printed = json.loads(capsys.readouterr().out)
    assert [(v["model_name"], v["model_version"]) for v in printed["versions"]] == [
        ("fraud", "3")]
    assert printed["runs"][0]["dataset_digest"] == "sha256:aaa"


def test_an_unknown_store_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(LineageError) as refused:
        open_lineage_index("mysql://user:secret@db/lineage")
    assert "secret" not in str(refused.value)
