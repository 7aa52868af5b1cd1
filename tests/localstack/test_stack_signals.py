"""`make run` stops on SIGTERM as on Ctrl-C, and a second SIGTERM (a process group gets one
per process) cannot interrupt or hang the shutdown."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from agogosml.localstack.stack import stop_on_sigterm


@pytest.fixture
def restored_sigterm() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("restored_sigterm")
def test_the_first_sigterm_stops_the_stack_and_the_next_ones_are_ignored() -> None:
    stop_on_sigterm()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    os.kill(os.getpid(), signal.SIGTERM)  # the shutdown goes on: nothing raised, nothing hung
