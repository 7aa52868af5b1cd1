"""`agogosml rollout status | deploy | promote | rollback | pods`."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from agogosml.errors import ConfigurationError
from agogosml.rollout.health import Fetch, MetricsUnreadable
from agogosml.rollout.prometheus import DEFAULT_SELECTOR

if TYPE_CHECKING:
    from agogosml.rollout.rollout import Rollout

METRICS_VIA = ("auto", "proxy", "direct", "prometheus")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rollout = commands.add_parser("rollout", help="blue/green rollouts of the app on Kubernetes")
    rollout.add_argument("action", choices=("status", "deploy", "promote", "rollback", "pods"),
                         help="pods: the --slot's pods and whether the gate can read each "
                              "one's metrics from here (non-zero exit if a ready one cannot "
                              "be read)")
    rollout.add_argument("--slot", default="production",
                         choices=("production", "idle", "blue", "green"),
                         help="pods: which slot")
    rollout.add_argument("--release", default="agogosml")
    rollout.add_argument("--namespace", default="default")
    rollout.add_argument("--chart", default="charts/agogosml",
                         help="chart for helm upgrade (path or OCI reference)")
    rollout.add_argument("--fullname", default=None,
                         help="the chart's fullname (default: the release name)")
    rollout.add_argument("--kubeconfig", default=None,
                         help="default: $KUBECONFIG or ~/.kube/config; inside a pod without "
                              "either, its ServiceAccount")
    rollout.add_argument("--helm", default="helm")
    rollout.add_argument("--image-tag", default=None,
                         help="deploy: the idle slot's image and the reader's and writer's "
                              "(image.tag, rolled back if they do not become ready)")
    rollout.add_argument("--model-uri", default=None,
                         help="deploy: the idle slot's model; models:/<name>@<alias> is "
                              "resolved to models:/<name>/<version> now")
    rollout.add_argument("--mlflow-tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                         help="the registry that resolves an alias (default: "
                              "$MLFLOW_TRACKING_URI)")
    rollout.add_argument("--promote", action="store_true", help="deploy: promote if it passes")
    rollout.add_argument(
        "--metrics-via", choices=METRICS_VIA, default="auto",
        help="how the gate reads each pod of a slot, found through the slot Service's "
             "EndpointSlices: 'proxy' through the API server's pod proxy (works wherever "
             "the kubeconfig does), 'direct' from inside the cluster, 'prometheus' "
             "increase() from --prometheus-url. auto: prometheus with --prometheus-url, "
             "else direct inside a pod, else proxy")
    rollout.add_argument("--metrics-port", default="http",
                         help="the name of the app's port in the EndpointSlices")
    rollout.add_argument("--prometheus-url", default=None,
                         help="Prometheus' base URL (its HTTP API serves /api/v1/query)")
    rollout.add_argument("--prometheus-selector", default=DEFAULT_SELECTOR,
                         help="PromQL label matchers for a slot's series; {namespace}, "
                              "{service}, {fullname} and {slot} are filled")
    rollout.add_argument("--gate-window-seconds", type=float, default=30.0)
    rollout.add_argument("--watch-seconds", type=float, default=300.0)
    rollout.add_argument("--ready-timeout-seconds", type=float, default=300.0)
    rollout.add_argument("--max-error-rate", type=float, default=0.01)
    rollout.add_argument("--max-p99-latency", type=float, default=0.25)
    rollout.add_argument("--min-shadow-agreement", type=float, default=0.95)
    rollout.add_argument("--min-requests", type=int, default=1,
                         help="scoring requests a window needs to be evidence at all")
    rollout.set_defaults(run=run)


def in_cluster(kubeconfig: str | None) -> bool:
    """Inside a pod, with no kubeconfig given or in the environment."""
    return (kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ
            and "KUBECONFIG" not in os.environ
            and not os.path.exists(os.path.expanduser("~/.kube/config")))


def metrics_via(choice: str, prometheus_url: str | None, inside: bool) -> str:
    if choice == "auto":
        return "prometheus" if prometheus_url else "direct" if inside else "proxy"
    if choice == "prometheus" and not prometheus_url:
        raise ConfigurationError("--metrics-via prometheus needs --prometheus-url")
    return choice


def run(args: argparse.Namespace) -> None:
    from kubernetes import client, config

    from agogosml.rollout.cluster import Cluster, Journal
    from agogosml.rollout.health import HealthLimits, MetricsSource, PerPod
    from agogosml.rollout.helm import HelmRelease
    from agogosml.rollout.pods import direct_fetch, proxy_fetch, slot_endpoints
    from agogosml.rollout.prometheus import PrometheusMetrics
    from agogosml.rollout.rollout import Rollout, WatchPolicy

    inside = in_cluster(args.kubeconfig)
    if inside:
        config.load_incluster_config()
        api = client.ApiClient()
    else:
        api = config.new_client_from_config(config_file=args.kubeconfig)
    fullname = args.fullname or args.release
    cluster = Cluster(api, args.namespace, fullname)
    via = metrics_via(args.metrics_via, args.prometheus_url, inside)
    # Prometheus judges the gate; `pods` still reads the pods themselves.
    pod_via = via if via != "prometheus" else "direct" if inside else "proxy"
    fetch = proxy_fetch(api, args.namespace) if pod_via == "proxy" else direct_fetch()

    def source_for(slot: str) -> MetricsSource:
        service = cluster.service_name(slot)
        if via == "prometheus":
            return PrometheusMetrics(args.prometheus_url, args.prometheus_selector.format(
                namespace=args.namespace, service=service, fullname=fullname, slot=slot))
        return PerPod(slot_endpoints(api, args.namespace, service, args.metrics_port), fetch,
                      f"Service {service}")

    tool = Rollout(
        HelmRelease(args.release, args.namespace, args.chart, args.helm, args.kubeconfig,
                    int(args.ready_timeout_seconds)),
        cluster,
        Journal(api, args.namespace, args.release),
        source_for,
        HealthLimits(args.max_error_rate, args.max_p99_latency, args.min_shadow_agreement,
                   args.min_requests),
        WatchPolicy(args.gate_window_seconds, args.watch_seconds, args.ready_timeout_seconds),
        mlflow_tracking_uri=args.mlflow_tracking_uri,
    )
    if args.action == "status":
        print(json.dumps(tool.status(), indent=2))
    elif args.action == "deploy":
        slot = tool.deploy(args.image_tag, args.model_uri)
        print(f"deployed to {slot}")
        if args.promote:
            print(f"promoted {tool.promote()}; watched {args.watch_seconds:.0f}s")
    elif args.action == "promote":
        print(f"promoted {tool.promote()}; watched {args.watch_seconds:.0f}s")
    elif args.action == "pods":
        _pods(args, tool, fetch)
    else:
        print(f"rolled back to {tool.rollback()}")


def _pods(args: argparse.Namespace, tool: Rollout, fetch: Fetch) -> None:
    from agogosml.rollout.cluster import other_slot
    from agogosml.rollout.pods import readability, slot_endpoints

    slot = args.slot
    if slot in ("production", "idle"):
        production = tool.cluster.production_slot()
        slot = production if slot == "production" else other_slot(production)
    service = tool.cluster.service_name(slot)
    try:
        report = readability(slot_endpoints(tool.cluster.api, args.namespace, service,
                                            args.metrics_port)(), fetch)
    except MetricsUnreadable as error:
        raise ConfigurationError(str(error)) from None
    print(json.dumps({"slot": slot, "service": service, "pods": report}, indent=2))
    if not any(pod["ready"] for pod in report):
        raise ConfigurationError(f"no ready pod behind Service {service}")
    unreadable = [str(pod["pod"]) for pod in report
                  if pod["ready"] and pod["metrics"] != "readable"]
    if unreadable:
        raise ConfigurationError(f"the gate cannot read the metrics of {', '.join(unreadable)} "
                                 "from here (see above)")
