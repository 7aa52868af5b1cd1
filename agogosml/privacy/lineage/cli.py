"""`agogosml gdpr lineage SUBJECT`: the model versions and runs that used a subject, as JSON."""

from __future__ import annotations

import argparse
import json

from agogosml.privacy.lineage.index import LineageIndex, open_lineage_index


def add_lineage_parser(actions: argparse._SubParsersAction[argparse.ArgumentParser],
                       default_store_url: str) -> None:
    lineage = actions.add_parser(
        "lineage", help="the model versions and training runs that used a subject")
    lineage.add_argument("subject", help="the subject's pseudonym, as the pipeline stores it")
    lineage.add_argument("--store-url", default=default_store_url,
                         help="the privacy store: sqlite:///<path> or postgresql://… "
                              "(default: $AGOGOSML_GDPR_STORE_URL or var/privacy/privacy.db)")
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
