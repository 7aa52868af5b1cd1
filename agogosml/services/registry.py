"""The deployables, one entry each: the one place that says what a service is called, which
module runs it, the port it listens on, its settings' environment prefix, its image, the
lock the image installs and the root Dockerfile's target that builds it.

The CLI (`agogosml serve`), the local stack (`make run`), the benchmark, `make images` and CI
read this table. The services' settings, the Dockerfile, docker-compose.yml and the Helm
chart keep their own copies, which tests/packaging/test_registry.py checks against it.

Standard library only: the reader's and writer's images carry no MLflow, pandas or numpy,
and Make and CI run it with a bare Python from the repository root:

    python -m agogosml.services.registry images          # "<target> <image>" per service
    python -m agogosml.services.registry outputs app     # "<field>=<value>" lines
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from typing import Literal

Lock = Literal["core", "reader", "app", "monitor"]
"""requirements/<lock>.txt: core for the writer (no MLflow, scikit-learn, pandas or numpy),
reader for the reader (the core plus its privacy stage: cryptography, Presidio, spaCy), app for
the app (the `app` extra), monitor for the monitor (the `monitor` extra:
the app's plus PostgreSQL's driver and YAML)."""


@dataclass(frozen=True)
class Service:
    name: str
    """`agogosml serve <name>`; also the name the local stack and the benchmark use."""
    module: str
    """Runs the service: `python -m <module>` (its `__main__` has `main()`)."""
    port: int
    """Where it listens unless told otherwise (its settings' `port` default)."""
    env_prefix: str
    """Of its settings' environment variables (`<prefix>PORT`, `<prefix>PIPELINE_TOKEN`)."""
    image: str
    """The image's name, without registry and tag."""
    lock: Lock
    """The lock its image installs."""
    target: str
    """The root Dockerfile's target that builds the image (`docker build --target`)."""
    auth_variable: str
    """The bearer token it requires on what it receives: the pipeline's token for the
    three pipeline services, the monitor's API token for labels and alerts."""

    @property
    def port_variable(self) -> str:
        """The environment variable that moves it to another port."""
        return f"{self.env_prefix}PORT"


SERVICES: tuple[Service, ...] = (
    Service(name="input_reader", module="agogosml.services.input_reader", port=8002,
            env_prefix="AGOGOSML_READER_", image="agogosml-input-reader", lock="reader",
            target="input-reader", auth_variable="AGOGOSML_READER_PIPELINE_TOKEN"),
    Service(name="app", module="agogosml.services.app", port=8000,
            env_prefix="AGOGOSML_APP_", image="agogosml-app", lock="app",
            target="app", auth_variable="AGOGOSML_APP_PIPELINE_TOKEN"),
    Service(name="output_writer", module="agogosml.services.output_writer", port=8001,
            env_prefix="AGOGOSML_WRITER_", image="agogosml-output-writer", lock="core",
            target="output-writer", auth_variable="AGOGOSML_WRITER_PIPELINE_TOKEN"),
    Service(name="monitor", module="agogosml.services.monitor", port=8005,
            env_prefix="AGOGOSML_MONITOR_", image="agogosml-monitor", lock="monitor",
            target="monitor", auth_variable="AGOGOSML_MONITOR_API_TOKEN"),
)
"""In the order events flow through them (the monitor reads what the writer wrote). Each
pipeline service's readiness needs the ones after it, so whoever starts them all starts
them in reverse; the monitor needs none of them."""

NAMES: tuple[str, ...] = tuple(service.name for service in SERVICES)
ENV_PREFIXES: tuple[str, ...] = tuple(service.env_prefix for service in SERVICES)


def get(name: str) -> Service:
    """The service called `name`; KeyError naming the known ones otherwise."""
    for service in SERVICES:
        if service.name == name:
            return service
    raise KeyError(f"no service {name!r}; the services are {', '.join(NAMES)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agogosml.services.registry",
                                     description="print the registry of services")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("images", help="'<Dockerfile target> <image>' per service, in flow "
                                       "order (make images)")
    outputs = commands.add_parser("outputs", help="one service's fields as '<field>=<value>' "
                                                  "lines (CI's $GITHUB_OUTPUT)")
    outputs.add_argument("name", choices=NAMES)
    args = parser.parse_args(argv)
    if args.command == "images":
        lines = [f"{service.target} {service.image}" for service in SERVICES]
    else:
        lines = [f"{field}={value}" for field, value in asdict(get(args.name)).items()]
    sys.stdout.write("".join(f"{line}\n" for line in lines))


if __name__ == "__main__":
    main()
