"""Entry point: `python -m agogosml.services.monitor` (or `agogosml serve monitor`)."""

from __future__ import annotations

from fastapi import FastAPI

from agogosml.services.monitor.settings import MonitorSettings
from agogosml.services.monitor.wiring import build_app
from agogosml.serving import run_service
from agogosml.settings import load_settings


def build() -> tuple[FastAPI, MonitorSettings]:
    settings = load_settings(MonitorSettings)
    return build_app(settings), settings


def main() -> None:
    run_service(build, "monitor")


if __name__ == "__main__":
    main()
