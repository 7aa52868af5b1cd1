"""Child processes the benchmark starts, and the CPU time they use (from /proc)."""

from __future__ import annotations

import bisect
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Child:
    """A Python module run as a child process, its output in a log file."""

    def __init__(self, name: str, args: Sequence[str], log_dir: Path) -> None:
        self.name = name
        self.args = [sys.executable, "-m", *args]
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}); "
                               f"see {self.log_path}")

    def terminate(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process (0.0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuSampler:
    """Samples, on a background thread, the CPU time of named processes (looked up anew on
    each sample, as they start), so that the use during a window known only afterwards
    (first to last output record) can be computed."""

    def __init__(self, pids: Callable[[], Mapping[str, int]],
                 interval_s: float = 0.05) -> None:
        self.pids = pids
        self.interval_s = interval_s
        self.times_ms: list[float] = []
        self.samples: list[dict[str, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):  # the sampling period
            self.mark()

    def mark(self) -> float:
        """Take a sample now; return its time (epoch ms)."""
        sample = {name: cpu_seconds(pid) for name, pid in self.pids().items()}
        now_ms = time.time() * 1000
        with self._lock:
            self.times_ms.append(now_ms)
            self.samples.append(sample)
        return now_ms

    def usage(self, start_ms: float, end_ms: float) -> dict[str, float]:
        """Per process, the share of one core used from `start_ms` to `end_ms` (epoch ms),
        from the last sample before the window to the first one after it."""
        with self._lock:
            times, samples = list(self.times_ms), list(self.samples)
        first = max(0, bisect.bisect_right(times, start_ms) - 1)
        last = min(len(samples) - 1, bisect.bisect_left(times, end_ms))
        if last <= first:
            return {}
        wall_s = (times[last] - times[first]) / 1000
        before = samples[first]
        return {name: (used - before.get(name, 0.0)) / wall_s
                for name, used in samples[last].items()
                if used >= before.get(name, 0.0)}  # else it ended: /proc no longer tells
