"""`agogosml train | evaluate | register | promote | rollback | retrain | write-demo-dataset`.

Commands print JSON. A candidate the gate rejects exits 3 (the report says why); errors
exit 2 through the main CLI.

The commands that train or register (train, register, retrain, retrain-server) record
subject lineage when given an index: --lineage-url, else $AGOGOSML_LINEAGE_URL, else
$AGOGOSML_GDPR_STORE_URL (the privacy store `agogosml gdpr` reads).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agogosml.modelloop.choices import ESTIMATOR_NAMES, TRIGGERS

if TYPE_CHECKING:
    from agogosml.modelloop.canned import CannedExample
    from agogosml.modelloop.gate import GateLimits, GateReport
    from agogosml.modelloop.retrain import LoopConfig
    from agogosml.modelloop.tracking import Tracking
    from agogosml.modelloop.training import TrainConfig

DEMO_FEATURES = ("amount,hour,distance_from_home_km,transactions_last_24h,"
                 "merchant_category,channel,country,card_present")
DEMO_PERSONAL = "customer_id,name,email,phone"
DEMO_SUBJECT = "customer_id"
LINEAGE_URL_ENVS = ("AGOGOSML_LINEAGE_URL", "AGOGOSML_GDPR_STORE_URL")

EXIT_REJECTED = 3
"""Distinct from 1 (a crash) and 2 (bad input), so a scheduler can retry crashes only."""


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("write-demo-dataset",
                               help="write the synthetic demo transactions to CSV or JSON lines")
    demo.add_argument("path", type=Path, help="a .csv or .jsonl file")
    demo.add_argument("--rows", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=_write_demo_dataset)

    train = commands.add_parser("train", help="train a candidate model and log it to MLflow")
    _tracking_args(train)
    _lineage_args(train)
    _train_args(train)
    _reuse_args(train)
    train.add_argument("--register", action="store_true",
                       help="then run the gate and register a passing candidate as challenger")
    _gate_args(train)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="run the test gate on a candidate run")
    evaluate.add_argument("--run-id", required=True)
    _tracking_args(evaluate)
    _gate_args(evaluate)
    evaluate.set_defaults(run=_evaluate)

    register = commands.add_parser(
        "register", help="gate a candidate run again and register it as challenger if it passes")
    register.add_argument("--run-id", required=True)
    register.add_argument("--trigger", choices=TRIGGERS, default="manual")
    _tracking_args(register)
    _lineage_args(register)
    _gate_args(register)
    register.set_defaults(run=_register)

    promote = commands.add_parser(
        "promote", help="model alias champion := challenger (previous := old champion)")
    _tracking_args(promote)
    promote.set_defaults(run=_promote)

    rollback = commands.add_parser(
        "rollback", help="model alias champion := previous (rolled_back := demoted champion)")
    _tracking_args(rollback)
    rollback.set_defaults(run=_rollback)

    retrain = commands.add_parser(
        "retrain", help="train, gate and register as challenger, as a trigger would")
    retrain.add_argument("--trigger", choices=TRIGGERS, required=True)
    _tracking_args(retrain)
    _lineage_args(retrain)
    _train_args(retrain)
    _reuse_args(retrain)
    _gate_args(retrain)
    retrain.set_defaults(run=_retrain)

    server = commands.add_parser(
        "retrain-server", help="serve POST /v1/retrain for monitors and erasure jobs "
        "(needs a bearer token in AGOGOSML_RETRAIN_TOKEN)")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8007)
    _tracking_args(server)
    _lineage_args(server)
    _train_args(server)
    _gate_args(server)
    server.set_defaults(run=_retrain_server)


def _tracking_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default=os.environ.get(
        "MLFLOW_TRACKING_URI", "sqlite:///var/mlflow/mlflow.db"))
    parser.add_argument("--artifacts", type=Path, default=Path("var/mlflow/artifacts"),
                        help="artifact location of a new experiment")
    parser.add_argument("--experiment", default="agogosml-model-loop")
    parser.add_argument("--model-name", default="demo")


def _lineage_args(parser: argparse.ArgumentParser) -> None:
    default = next((os.environ[name] for name in LINEAGE_URL_ENVS if os.environ.get(name)),
                   None)
    parser.add_argument("--lineage-url", default=default,
                        help="subject lineage index to record runs and versions in: "
                             "sqlite:///<path> or postgresql://… (default: "
                             f"${' or $'.join(LINEAGE_URL_ENVS)}; none: nothing recorded)")


def _reuse_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reuse-from", default=None, metavar="RUN_ID",
                        help="a sharded run whose shards with unchanged rows are reused "
                             "(an erasure retrain reuses the champion's run by default)")


def _train_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, required=True, help="CSV or JSON-lines file")
    parser.add_argument("--label", default="is_fraud", help="binary (0/1) label column")
    parser.add_argument("--features", default=DEMO_FEATURES, help="comma-separated columns")
    parser.add_argument("--categorical", default="",
                        help="features to treat as categories whatever their dtype")
    parser.add_argument("--personal-fields", default=DEMO_PERSONAL,
                        help="columns that may never be features")
    parser.add_argument("--subject", default=DEMO_SUBJECT,
                        help="the data-subject (pseudonym) column lineage records and shards "
                             "split by; '' for none")
    parser.add_argument("--shards", type=int, default=0,
                        help="0: one model; N: N shard models by subject, averaged (SISA), "
                             "so forgetting a subject refits one shard")
    parser.add_argument("--estimator", choices=ESTIMATOR_NAMES, default="logistic_regression")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="estimator parameter, VALUE as JSON or a plain string (repeatable)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--holdout-fraction", type=float, default=0.25)


def _gate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-roc-auc-drop", type=float, default=0.005,
                        help="how far below the champion's holdout ROC AUC a candidate may be")
    parser.add_argument("--max-average-precision-drop", type=float, default=None)
    parser.add_argument("--max-log-loss-increase", type=float, default=None)
    parser.add_argument("--min-roc-auc", type=float, default=0.55)
    parser.add_argument("--latency-rows", type=int, default=1_000)
    parser.add_argument("--max-latency-s", type=float, default=1.0,
                        help="limit for scoring --latency-rows rows in one batch")
    parser.add_argument("--canned", default="auto",
                        help="canned examples: auto (the demo's for demo features), none, "
                             "or a JSON file")
    parser.add_argument("--report", type=Path, default=None, help="also write the report here")


def _tracking(args: argparse.Namespace) -> Tracking:
    from agogosml.modelloop.tracking import Tracking

    return Tracking(args.tracking_uri, args.artifacts, args.experiment, args.model_name,
                    getattr(args, "lineage_url", None) or None)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _params(items: list[str]) -> dict[str, Any]:
    from agogosml.modelloop.errors import ModelLoopError

    params: dict[str, Any] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise ModelLoopError(f"--param {item}: use KEY=VALUE")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _train_config(args: argparse.Namespace) -> TrainConfig:
    from agogosml.modelloop.dataset import DatasetSpec
    from agogosml.modelloop.training import TrainConfig

    spec = DatasetSpec(args.label, _names(args.features), _names(args.categorical),
                       _names(args.personal_fields), args.subject.strip() or None)
    return TrainConfig(args.dataset, spec, args.estimator, _params(args.param), args.seed,
                       args.holdout_fraction, args.shards)


def _limits(args: argparse.Namespace) -> GateLimits:
    from agogosml.modelloop.gate import GateLimits

    return GateLimits(args.max_roc_auc_drop, args.max_average_precision_drop,
                      args.max_log_loss_increase, args.min_roc_auc, args.latency_rows,
                      args.max_latency_s)


def _examples(args: argparse.Namespace) -> tuple[CannedExample, ...] | None:
    from agogosml.modelloop.canned import load_examples

    if args.canned == "auto":
        return None
    if args.canned == "none":
        return ()
    return load_examples(Path(args.canned))


def _loop_config(args: argparse.Namespace) -> LoopConfig:
    from agogosml.modelloop.retrain import LoopConfig

    return LoopConfig(_tracking(args), _train_config(args), _limits(args), _examples(args))


def _print(data: object) -> None:
    print(json.dumps(data, indent=1))


def _gate(args: argparse.Namespace, run_id: str) -> GateReport:
    from agogosml.modelloop.gate import evaluate

    report = evaluate(_tracking(args), run_id, _limits(args), _examples(args))
    if args.report is not None:
        args.report.write_text(report.to_json())
    return report


def _write_demo_dataset(args: argparse.Namespace) -> None:
    from agogosml.modelloop.dataset import write_demo_dataset

    path = write_demo_dataset(args.path, args.rows, args.seed)
    _print({"path": str(path), "rows": args.rows, "seed": args.seed})


def _train(args: argparse.Namespace) -> None:
    from agogosml.modelloop.training import train

    trained = train(_tracking(args), _train_config(args), reuse_from=args.reuse_from)
    result: dict[str, Any] = {"run_id": trained.run_id, "model_uri": trained.model_uri,
                              "dataset_digest": trained.dataset_digest,
                              "metrics": trained.metrics,
                              "fitted_shards": list(trained.fitted_shards),
                              "reused_shards": list(trained.reused_shards),
                              "lineage_subjects": trained.lineage_subjects}
    if args.register:
        result.update(_gate_and_register(args, trained.run_id))
    _print(result)
    if args.register and result["registered_version"] is None:
        raise SystemExit(EXIT_REJECTED)


def _evaluate(args: argparse.Namespace) -> None:
    report = _gate(args, args.run_id)
    _print(report.to_dict())
    if not report.passed:
        raise SystemExit(EXIT_REJECTED)


def _register(args: argparse.Namespace) -> None:
    result = _gate_and_register(args, args.run_id, args.trigger)
    _print(result)
    if result["registered_version"] is None:
        raise SystemExit(EXIT_REJECTED)


def _gate_and_register(args: argparse.Namespace, run_id: str,
                       trigger: str = "manual") -> dict[str, Any]:
    """The gate's report and the version registered as challenger (None if rejected)."""
    from agogosml.modelloop.registry import register_challenger

    report = _gate(args, run_id)
    version = register_challenger(_tracking(args), report, trigger) if report.passed else None
    return {"gate": report.to_dict(), "registered_version": version}


def _promote(args: argparse.Namespace) -> None:
    from agogosml.modelloop.registry import promote

    _print(promote(_tracking(args)))


def _rollback(args: argparse.Namespace) -> None:
    from agogosml.modelloop.registry import rollback

    _print(rollback(_tracking(args)))


def _retrain(args: argparse.Namespace) -> None:
    from agogosml.modelloop.retrain import retrain

    result = retrain(args.trigger, _loop_config(args), reuse_from=args.reuse_from)
    if args.report is not None:
        args.report.write_text(result.gate.to_json())
    _print(result.to_dict())
    if not result.registered:
        raise SystemExit(EXIT_REJECTED)


def _retrain_server(args: argparse.Namespace) -> None:
    import uvicorn
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from agogosml.modelloop.http import RetrainServerSettings, retrain_router
    from agogosml.settings import load_settings
    from agogosml.web.errors import install_error_handlers
    from agogosml.web.probes import probe_router

    credentials = load_settings(RetrainServerSettings).credentials()
    registry = CollectorRegistry()

    async def ready() -> dict[str, bool]:
        return {"serving": True}

    app = FastAPI(title="agogosml retrain")
    install_error_handlers(app)
    app.include_router(probe_router(registry, ready))
    app.include_router(retrain_router(_loop_config(args), credentials, registry))
    uvicorn.run(app, host=args.host, port=args.port, log_config=None)
