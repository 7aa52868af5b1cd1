"""The Spark job as a real child process in a process group of its own (the Python driver and
its JVM), so that a crash kills both at once; Spark's Python workers, in a group of their
own, end when the JVM's pipe to them closes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import orjson

from agogosml.localstack.processes import ChildProcess
from tests.conftest import Registry

SCHEMA_PATH = Path(__file__).parents[2] / "agogosml" / "demo" / "transaction.schema.json"


def job_env(bootstrap: str, topic_prefix: str, registry: Registry, checkpoint: Path,
            **extra: str) -> dict[str, str]:
    """The job on `<prefix>.input|output|deadletter` with the e2e trio's contract (schema,
    id and subject fields, record limit), in local[2] without Spark's web UI."""
    return {
        "AGOGOSML_SPARK_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGOGOSML_SPARK_INPUT_STREAM": f"{topic_prefix}.input",
        "AGOGOSML_SPARK_OUTPUT_STREAM": f"{topic_prefix}.output",
        "AGOGOSML_SPARK_DEADLETTER_STREAM": f"{topic_prefix}.deadletter",
        "AGOGOSML_SPARK_CHECKPOINT_LOCATION": str(checkpoint),
        "AGOGOSML_SPARK_SCHEMA_PATH": str(SCHEMA_PATH),
        "AGOGOSML_SPARK_ID_FIELD": "transaction_id",
        "AGOGOSML_SPARK_SUBJECT_FIELD": "customer_id",
        "AGOGOSML_SPARK_MAX_RECORD_BYTES": "4096",
        "AGOGOSML_SPARK_MODEL_URI": registry.model_uri,
        "AGOGOSML_SPARK_MLFLOW_TRACKING_URI": registry.tracking_uri,
        "AGOGOSML_SPARK_MASTER": "local[2]",
        "AGOGOSML_SPARK_SPARK_CONF": orjson.dumps({"spark.ui.enabled": "false"}).decode(),
        **{f"AGOGOSML_SPARK_{name.upper()}": value for name, value in extra.items()},
    }


class SparkJob(ChildProcess):
    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        super().__init__("spark", [sys.executable, "-m", "agogosml.engines.spark"], env,
                         log_path)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        """True while it runs; AssertionError once it exited (waits fail early)."""
        code = self.exit_code()
        if self.process is not None and code is not None:
            raise AssertionError(f"the Spark job exited ({code}); see {self.log_path}")
        return True

    def kill(self) -> None:
        """SIGKILL to the driver and its JVM together: a crash."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM (the query and Spark stop), then SIGKILL to the group if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        # Anything of the job still alive in its group (a worker) goes with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
