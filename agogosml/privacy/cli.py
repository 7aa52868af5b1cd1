"""`agogosml gdpr …`: data-subject requests and their keys.

    gdpr keygen              a new PII keyring (pseudonym key, this month's encryption key)
    gdpr pseudonym ID        the pseudonym the pipeline gives a subject id (needs the keyring)
    gdpr lineage SUBJECT     which model versions and runs used a subject
    gdpr forget SUBJECT      forget a subject everywhere (resumable); prints the audit record
    gdpr audit [SUBJECT]     the audit records of erasure requests

Everything else comes from AGOGOSML_GDPR_* (agogosml/privacy/settings.py).
"""

from __future__ import annotations

import argparse
import json
import sys

from agogosml.privacy.lineage.cli import add_lineage_parser
from agogosml.privacy.settings import GdprSettings
from agogosml.settings import load_settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gdpr = commands.add_parser("gdpr", help="data-subject requests: lineage, forget, keys")
    actions = gdpr.add_subparsers(dest="gdpr_command", required=True)
    keygen = actions.add_parser("keygen", help="print a new PII keyring (YAML) for a Secret")
    keygen.set_defaults(run=_keygen)
    pseudonym = actions.add_parser("pseudonym", help="the pseudonym of a subject id")
    pseudonym.add_argument("subject_id")
    pseudonym.set_defaults(run=_pseudonym)
    add_lineage_parser(actions, load_settings(GdprSettings).store_url.get_secret_value())
    forget = actions.add_parser(
        "forget", help="erase a subject: snapshots, event store, keys, models, lineage")
    forget.add_argument("subject", help="the subject's pseudonym (see `gdpr pseudonym`)")
    forget.set_defaults(run=_forget)
    audit = actions.add_parser("audit", help="the audit records of erasure requests")
    audit.add_argument("subject", nargs="?", default=None)
    audit.set_defaults(run=_audit)


def _print(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _keygen(args: argparse.Namespace) -> None:
    from agogosml.privacy.keyfile import new_keyring_text

    sys.stdout.write(new_keyring_text())


def _pseudonym(args: argparse.Namespace) -> None:
    from agogosml.privacy.actions import Pseudonymizer
    from agogosml.privacy.keys import Keyring

    settings = load_settings(GdprSettings)
    keyring = (Keyring.from_file(settings.keyring_path) if settings.keyring_path
               else Keyring.from_env())
    print(Pseudonymizer(keyring.pseudonym_key())(args.subject_id))


def _forget(args: argparse.Namespace) -> None:
    from agogosml.privacy.forget.audit import audit_record
    from agogosml.privacy.forget.journal import DONE
    from agogosml.privacy.forget.wiring import build_forgetter

    with build_forgetter(load_settings(GdprSettings)) as forgetter:
        request = forgetter.forget(args.subject)
    _print(audit_record(request))
    if request.state != DONE:
        raise SystemExit(f"the request is {request.state}: {request.note}")


def _audit(args: argparse.Namespace) -> None:
    from agogosml.privacy.forget.audit import audit_record
    from agogosml.privacy.forget.journal import open_journal

    with open_journal(load_settings(GdprSettings).store_url.get_secret_value()) as journal:
        _print([audit_record(request) for request in journal.requests(args.subject)])
