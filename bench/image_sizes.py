"""How big each service's environment is: before (every image got every dependency) and after
(each image gets its service's lock). `python -m bench.image_sizes` (or `make sizes`).

There is no Docker engine on our machines, so this measures what the images' virtualenv
(/opt/venv, the only thing the runtime stage adds to the base image) would hold: a
virtualenv made from the same locks with the same pip, its size counted by `du -sb`. The
project's own files (a few hundred KB) come on top, the same before and after.

Before: the union of app.txt and rollout.txt, i.e. the old `dependencies` list (core, MLflow,
scikit-learn, pandas, kubernetes) at today's locked versions. After: core.txt for the
reader and writer, app.txt for the app. The envs are cached in ~/.cache/agogosml/envs
(tests/packaging/lockenv.py), so only the first run installs anything.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from agogosml.services.registry import SERVICES
from tests.packaging.lockenv import lock_env, site_packages

BEFORE = ["app", "rollout"]
AFTER: dict[str, list[str]] = {service.name: [service.lock] for service in SERVICES}
MB = 1_000_000


def du_bytes(path: Path) -> int:
    """`du -sb`: apparent size in bytes, each hard-linked file once."""
    output = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True,
                            check=True, timeout=300).stdout
    return int(output.split()[0])


def sizes(locks: list[str]) -> tuple[int, int]:
    """(site-packages, whole virtualenv) in bytes for an env made from `locks`."""
    env = lock_env(locks)
    return du_bytes(site_packages(env)), du_bytes(env)


def main() -> None:
    before_site, before_env = sizes(BEFORE)
    print("installed environment per service image (du -sb), MB = 10^6 bytes\n")
    print(f"{'service':<14} {'lock':<22} {'site-packages':>14} {'venv':>8} "
          f"{'before (all)':>13} {'smaller by':>11}")
    for service, locks in AFTER.items():
        site, env = sizes(locks)
        print(f"{service:<14} {'+'.join(f'{lock}.txt' for lock in locks):<22} "
              f"{site / MB:>11.1f} MB {env / MB:>5.0f} MB {before_env / MB:>10.0f} MB "
              f"{1 - env / before_env:>10.0%}")
    print(f"\nbefore, every image: site-packages {before_site / MB:.1f} MB, "
          f"venv {before_env / MB:.0f} MB ({' + '.join(f'{lock}.txt' for lock in BEFORE)})")


if __name__ == "__main__":
    main()
