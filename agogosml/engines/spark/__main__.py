"""`python -m agogosml.engines.spark` (and `agogosml spark run`): the Spark job, settings
from AGOGOSML_SPARK_*; also the file spark-submit is given (see the package's docstring)."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from agogosml.engines.spark.settings import SparkJobSettings
from agogosml.errors import AgogosmlError
from agogosml.logs import configure_logging
from agogosml.settings import load_settings


def main() -> None:
    try:
        settings = load_settings(SparkJobSettings)
    except AgogosmlError as error:
        print(f"agogosml spark: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("spark", settings.log_level)
    stop = threading.Event()

    def on_signal(_: int, __: FrameType | None) -> None:
        # Ignore the next ones first: a second signal handled inside stop.set() would wait
        # for the lock this handler holds, for ever (agogosml.localstack.stack hung so).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from agogosml.engines.spark.job import run  # pyspark and MLflow load only now

    try:
        run(settings, stop)
    except AgogosmlError as error:
        print(f"agogosml spark: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
