"""`agogosml gdpr lineage SUBJECT`: the model versions and runs that used a subject, as JSON."""

from __future__ import annotations

import argparse
import json
import os

from agogosml.privacy.lineage.index import LineageIndex, open_lineage_index

STORE_URL_ENV = "AGOGOSML_LINEAGE_STORE_URL"
DEFAULT_STORE_URL = "sqlite:///var/lineage/lineage.db"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `gdpr` with its `lineage` action. A `gdpr` parser made elsewhere can take the
    action through `add_lineage_parser(its subparsers)` instead."""
    gdpr = commands.add_parser("gdpr", help="data-subject requests: lineage")
    add_lineage_parser(gdpr.add_subparsers(dest="gdpr_command", required=True))


def add_lineage_parser(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lineage = actions.add_parser(
        "lineage", help="the model versions and training runs that used a subject")
    lineage.add_argument("subject", help="the subject's pseudonym, as the pipeline stores it")
    lineage.add_argument("--store-url", default=os.environ.get(STORE_URL_ENV, DEFAULT_STORE_URL),
                         help=f"sqlite:///<path> or postgresql://… (default: ${STORE_URL_ENV} "
                              f"or {DEFAULT_STORE_URL})")
    lineage.set_defaults(run=run)


def lineage_report(index: LineageIndex, subject: str) -> dict[str, object]:
    """What the CLI prints and the HTTP route answers."""
    return {
        "subject": subject,
        "versions": [use._asdict() for use in index.versions_for(subject)],
        "runs": [run._asdict() for run in index.runs_for(subject)],
    }


def run(args: argparse.Namespace) -> None:
    with open_lineage_index(args.store_url) as index:
        print(json.dumps(lineage_report(index, args.subject), ensure_ascii=False, indent=2))
