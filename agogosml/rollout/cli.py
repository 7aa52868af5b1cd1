"""`agogosml rollout status | deploy | promote | rollback`."""

from __future__ import annotations

import argparse
import json

from agogosml.rollout.gate import GateLimits, Scrape, http_scrape


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rollout = commands.add_parser("rollout", help="blue/green rollouts of the app on Kubernetes")
    rollout.add_argument("action", choices=("status", "deploy", "promote", "rollback"))
    rollout.add_argument("--release", default="agogosml")
    rollout.add_argument("--namespace", default="default")
    rollout.add_argument("--chart", default="charts/agogosml",
                         help="chart for helm upgrade (path or OCI reference)")
    rollout.add_argument("--fullname", default=None,
                         help="the chart's fullname (default: the release name)")
    rollout.add_argument("--kubeconfig", default=None)
    rollout.add_argument("--helm", default="helm")
    rollout.add_argument("--image-tag", default=None)
    rollout.add_argument("--model-uri", default=None)
    rollout.add_argument("--promote", action="store_true", help="deploy: promote if it passes")
    rollout.add_argument("--metrics-url", default="http://{fullname}-app-{slot}:8000/metrics",
                         help="where a slot's metrics are read ({fullname} and {slot} filled)")
    rollout.add_argument("--gate-window-seconds", type=float, default=30.0)
    rollout.add_argument("--watch-seconds", type=float, default=300.0)
    rollout.add_argument("--ready-timeout-seconds", type=float, default=300.0)
    rollout.add_argument("--max-error-rate", type=float, default=0.01)
    rollout.add_argument("--max-p99-latency", type=float, default=0.25)
    rollout.add_argument("--min-shadow-agreement", type=float, default=0.95)
    rollout.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from kubernetes import config

    from agogosml.rollout.cluster import Cluster, Journal
    from agogosml.rollout.helm import HelmRelease
    from agogosml.rollout.rollout import Rollout, WatchPolicy

    api = config.new_client_from_config(config_file=args.kubeconfig)
    fullname = args.fullname or args.release

    def scrape_for(slot: str) -> Scrape:
        return http_scrape(args.metrics_url.format(fullname=fullname, slot=slot))

    tool = Rollout(
        HelmRelease(args.release, args.namespace, args.chart, args.helm, args.kubeconfig,
                    int(args.ready_timeout_seconds)),
        Cluster(api, args.namespace, fullname),
        Journal(api, args.namespace, args.release),
        scrape_for,
        GateLimits(args.max_error_rate, args.max_p99_latency, args.min_shadow_agreement),
        WatchPolicy(args.gate_window_seconds, args.watch_seconds, args.ready_timeout_seconds),
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
    else:
        print(f"rolled back to {tool.rollback()}")
