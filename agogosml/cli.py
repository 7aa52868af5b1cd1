"""The `agogosml` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import sys
from pathlib import Path

from agogosml.errors import AgogosmlError
from agogosml.logs import configure_logging
from agogosml.modelloop.cli import add_parsers as add_modelloop_parsers
from agogosml.privacy.cli import add_parser as add_gdpr_parser
from agogosml.rollout.cli import add_parser as add_rollout_parser
from agogosml.services import registry
from agogosml.services.input_reader.settings import ReaderStreamSettings
from agogosml.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(f"cli.{args.command}", "INFO")
    try:
        args.run(args)
    except AgogosmlError as error:
        print(f"agogosml {args.command}: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agogosml", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run one of the pipeline services")
    serve.add_argument("service", choices=sorted(registry.NAMES))
    serve.set_defaults(run=_serve)

    train = commands.add_parser("train-demo", help="train and register the demo model")
    train.add_argument("--tracking-uri", default="sqlite:///var/mlflow/mlflow.db")
    train.add_argument("--artifacts", type=Path, default=Path("var/mlflow/artifacts"))
    train.add_argument("--if-missing", action="store_true",
                       help="do nothing when models:/demo@champion exists")
    train.add_argument("--privacy-policy", type=Path, default=None,
                       help="keep the training data as this PII policy leaves it (pseudonyms)")
    train.add_argument("--keyring", type=Path, default=None,
                       help="the policy's keys (default: AGOGOSML_PII_* variables)")
    train.add_argument("--lineage-url", default=None,
                       help="record the run's subjects and the version in this lineage index")
    train.add_argument("--shards", type=int, default=0,
                       help="train an ensemble of N subject-hashed shards (SISA)")
    train.set_defaults(run=_train_demo)

    produce = commands.add_parser(
        "produce-demo", help="send demo transactions to the reader's input stream "
                             "(transport settings from AGOGOSML_READER_*)")
    produce.add_argument("--count", type=int, default=0, help="0 = until interrupted")
    produce.add_argument("--rate", type=float, default=50.0, help="events per second")
    produce.add_argument("--drift-after", type=int, default=None, metavar="N",
                         help="shift a feature from the N-th event on (the monitor's demo)")
    produce.add_argument("--drift-feature", default="distance_from_home_km")
    produce.add_argument("--drift-sigmas", type=float, default=1.0,
                         help="the shift, in the feature's standard deviations")
    produce.add_argument("--labels-stream", default=None,
                         help="also send each event's label there, --label-delay later")
    produce.add_argument("--label-delay", type=float, default=5.0, metavar="SECONDS")
    produce.set_defaults(run=_produce_demo)

    topics = commands.add_parser("create-topics", help="create the pipeline's Kafka topics")
    topics.add_argument("--partitions", type=int, default=3)
    topics.set_defaults(run=_create_topics)

    replay = commands.add_parser(
        "replay-deadletters", help="send dead letters' original records back to the input")
    replay.add_argument("--limit", type=int, default=None)
    replay.add_argument("--idle-timeout", type=float, default=5.0,
                        help="stop after this many seconds without a dead letter")
    replay.add_argument("--reason", action="append", dest="reasons", metavar="REASON",
                        help="replay only dead letters with this reason (repeatable); "
                             "the others are passed over and committed")
    replay.set_defaults(run=_replay)

    tail = commands.add_parser("tail", help="print the records of a Kafka topic "
                                            "(connection from AGOGOSML_READER_*)")
    tail.add_argument("topic")
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max", type=int, default=0, help="stop after this many (0 = never)")
    tail.set_defaults(run=_tail)

    spark = commands.add_parser("spark", help="the pipeline as one Spark Structured Streaming "
                                              "job (settings from AGOGOSML_SPARK_*)")
    spark_commands = spark.add_subparsers(dest="spark_command", required=True)
    spark_run = spark_commands.add_parser(
        "run", help="run the job until stopped (local[*], or the master spark-submit gave)")
    spark_run.set_defaults(run=_spark_run)

    add_rollout_parser(commands)
    add_gdpr_parser(commands)
    add_modelloop_parsers(commands)

    local = commands.add_parser("local-stack", help="the whole pipeline locally (make run)")
    local.set_defaults(run=lambda _: _local_stack())
    return parser


def _serve(args: argparse.Namespace) -> None:
    # Imported only now: the service's dependencies (MLflow for the app) load with it.
    module = importlib.import_module(f"{registry.get(args.service).module}.__main__")
    module.main()


def _spark_run(_: argparse.Namespace) -> None:
    # Imported only now: pyspark and MLflow load with it.
    from agogosml.engines.spark.__main__ import main as run_job

    run_job()


def _train_demo(args: argparse.Namespace) -> None:
    from agogosml.demo.train import has_alias, train_and_register

    if args.if_missing and has_alias(args.tracking_uri):
        logging.getLogger(__name__).info("models:/demo@champion exists; not training")
        return
    protect = None
    if args.privacy_policy is not None:
        from agogosml.privacy.engine import PolicyEngine
        from agogosml.privacy.keys import Keyring
        from agogosml.privacy.policy import Policy

        keyring = Keyring.from_file(args.keyring) if args.keyring else Keyring.from_env()
        protect = PolicyEngine(Policy.from_file(args.privacy_policy), keyring).apply
    trained = train_and_register(args.tracking_uri, args.artifacts, protect=protect,
                                 lineage_url=args.lineage_url, shards=args.shards)
    print(f"registered models:/{trained.model_name}/{trained.version} as champion "
          f"(holdout ROC AUC {trained.roc_auc:.3f})")


def _reader_settings() -> ReaderStreamSettings:
    return load_settings(ReaderStreamSettings)


def _produce_demo(args: argparse.Namespace) -> None:
    from agogosml.demo.producer import Drift, Feedback, produce
    from agogosml.streaming.factory import build_sink

    settings = _reader_settings()
    sink = build_sink(settings.source, settings, settings.input_stream)
    drift = (Drift(args.drift_feature, args.drift_sigmas, args.drift_after)
             if args.drift_after is not None else None)
    labels = (build_sink(settings.source, settings, args.labels_stream)
              if args.labels_stream else None)

    async def run() -> int:
        await sink.start()
        if labels is not None:
            await labels.start()
        try:
            return await produce(sink, args.count, args.rate, drift=drift,
                                 feedback=Feedback(labels, args.label_delay) if labels else None)
        finally:
            await sink.stop()
            if labels is not None:
                await labels.stop()

    print(f"sent {asyncio.run(run())} events to {settings.input_stream}")


def _create_topics(args: argparse.Namespace) -> None:
    from agogosml.services.monitor.settings import MonitorStreamSettings
    from agogosml.services.output_writer.settings import WriterStreamSettings
    from agogosml.streaming.topics import ensure_topics

    reader = _reader_settings()
    writer = load_settings(WriterStreamSettings)
    asyncio.run(ensure_topics(reader.kafka_client_options(),
                              [reader.input_stream, reader.deadletter_stream],
                              args.partitions))
    asyncio.run(ensure_topics(writer.kafka_client_options(), [writer.output_stream],
                              args.partitions))
    monitor = load_settings(MonitorStreamSettings)
    asyncio.run(ensure_topics(monitor.kafka_client_options(), [monitor.labels_stream],
                              args.partitions))


def _replay(args: argparse.Namespace) -> None:
    from agogosml.services.input_reader.deadletters import ReplayReport, replay
    from agogosml.services.input_reader.privacy import privacy_from_settings
    from agogosml.streaming.factory import build_sink, build_source

    settings = _reader_settings()
    privacy = privacy_from_settings(settings)  # sealed letters open with the reader's keys
    sealer = None if privacy is None else privacy.sealer
    source = build_source(settings.source, settings, settings.deadletter_stream,
                          f"{settings.consumer_group}-replay")
    sink = build_sink(settings.source, settings, settings.input_stream)

    async def run() -> ReplayReport:
        await sink.start()
        await source.start()
        try:
            return await replay(source, sink, args.limit, args.idle_timeout,
                                reasons=args.reasons, sealer=sealer)
        finally:
            await source.stop()
            await sink.stop()

    report = asyncio.run(run())
    print(f"replayed {report.replayed} dead letters to {settings.input_stream}")
    if report.filtered_out:
        print(f"passed over {report.filtered_out} with other reasons")
    for skipped in report.skipped:
        print(f"skipped {skipped}")


def _tail(args: argparse.Namespace) -> None:
    from agogosml.streaming.tail import tail

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(_reader_settings().kafka_client_options(), args.topic,
                         args.from_beginning, args.max))


def _local_stack() -> None:
    from agogosml.localstack.stack import main as run_stack

    run_stack()


if __name__ == "__main__":
    main()
