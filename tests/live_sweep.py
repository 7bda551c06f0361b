"""Find and delete what hk8s e2e runs left on a Hetzner project, by label, and say what it was.

The lifecycle fixture (``conftest.LiveRun.cleanup``) sweeps one run's cluster after
``hk8s destroy``; the nightly workflow runs this file as its last step, in every outcome, for
whatever a cancelled or killed job could not clean itself::

    python tests/live_sweep.py --cluster-prefix e2e- --fail-if-deleted

It deletes every resource labelled ``managed-by=hk8s`` whose ``cluster`` label starts with the
prefix, and image-build servers and SSH keys (which carry a build id, not a cluster). Exit 0 when
nothing was there, 1 when it deleted something and ``--fail-if-deleted`` is given (destroy
should have left nothing), 2 when it could not finish. The project must be one that only e2e
runs use: every matching cluster is deleted, whoever created it.

The token comes from ``HCLOUD_TOKEN`` only and never appears in what this prints: a failure of
the hcloud library is reported as one line with the token replaced, never as a traceback
(its frames hold the Authorization header).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any, TypeVar

import hcloud

from hk8s.model.clock import ScaledClock

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

T = TypeVar("T")
DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
# Deleted in this order: what uses a resource goes before it (servers before their firewall,
# network and placement group; load balancers before the network).
SWEPT = ("servers", "load_balancers", "firewalls", "networks", "placement_groups", "ssh_keys")
BUILD_SELECTOR = "managed-by=hk8s,hk8s/role=image-build"
# Waiting for deletions to land (a firewall is "in use" until its servers are gone).
SWEEP_TIMEOUT = 900.0  # clock seconds
SWEEP_POLL = 5.0


class SweepError(Exception):
    """The sweep could not list or delete; the message is already redacted."""


def client(env: Mapping[str, str]) -> hcloud.Client:
    endpoint = env.get("HCLOUD_ENDPOINT") or DEFAULT_ENDPOINT
    return hcloud.Client(
        token=env["HCLOUD_TOKEN"], api_endpoint=endpoint, application_name="hk8s-e2e", timeout=30
    )


def safely(token: str, what: str, call: Callable[[], T]) -> T:
    """``call()``, with any failure turned into one redacted SweepError line."""
    try:
        return call()
    except (AssertionError, SweepError):
        raise
    except Exception as exc:
        message = f"{what} failed: {type(exc).__name__}: {exc}".replace(token, "<token>")
    raise SweepError(message)  # outside ``except``: no chained library traceback


def find(
    api: hcloud.Client,
    selector: str,
    owned: Callable[[Mapping[str, str]], bool],
    builds: Callable[[Mapping[str, str]], bool],
) -> dict[str, list[Any]]:
    """kind -> resources: those ``selector`` lists that are ``owned``, and the image-build
    servers and keys that ``builds`` claims."""
    found = {
        kind: [r for r in getattr(api, kind).get_all(label_selector=selector) if owned(r.labels)]
        for kind in SWEPT
    }
    for kind in ("servers", "ssh_keys"):
        leftovers = getattr(api, kind).get_all(label_selector=BUILD_SELECTOR)
        found[kind] += [r for r in leftovers if builds(r.labels) and r not in found[kind]]
    return found


def sweep(
    api: hcloud.Client,
    selector: str,
    owned: Callable[[Mapping[str, str]], bool],
    builds: Callable[[Mapping[str, str]], bool],
    clock: ScaledClock,
) -> dict[str, list[str]]:
    """Delete everything ``find`` sees, round after round, until nothing is left: kind -> the
    names it deleted."""
    swept: dict[str, list[str]] = {}
    deadline = clock.now() + SWEEP_TIMEOUT
    while True:
        found = find(api, selector, owned, builds)
        if not any(found.values()):
            return swept
        for kind in SWEPT:
            for resource in found[kind]:
                names = swept.setdefault(kind, [])
                if resource.name not in names:
                    names.append(resource.name)
                # In use, locked or already gone: the next round sees.
                with contextlib.suppress(hcloud.APIException):
                    getattr(api, kind).delete(resource)
        if clock.now() > deadline:
            left = {k: [r.name for r in v] for k, v in found.items() if v}
            raise AssertionError(f"the label sweep could not delete {left}")
        asyncio.run(clock.sleep(SWEEP_POLL))


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster-prefix", required=True, help="e.g. e2e-")
    parser.add_argument("--fail-if-deleted", action="store_true")
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    token = env.get("HCLOUD_TOKEN", "").strip()
    if not token:
        print("sweep: HCLOUD_TOKEN is not set", file=sys.stderr)
        return 2
    if not args.cluster_prefix.strip():
        print("sweep: --cluster-prefix must not be empty (it would match every cluster)")
        return 2

    def owned(labels: Mapping[str, str]) -> bool:
        return labels.get("cluster", "").startswith(args.cluster_prefix)

    clock = ScaledClock(float(env.get("HK8S_TIME_SCALE") or 1.0))
    try:
        swept = safely(
            token,
            "the label sweep",
            lambda: sweep(
                client({**env, "HCLOUD_TOKEN": token}),
                "managed-by=hk8s",
                owned,
                lambda _labels: True,
                clock,
            ),
        )
    except (SweepError, AssertionError) as exc:
        print(f"sweep: {exc}", file=sys.stderr)
        return 2
    if not swept:
        print(f"sweep: nothing labelled cluster={args.cluster_prefix}* or image-build was left")
        return 0
    for kind, names in swept.items():
        print(f"sweep: deleted {len(names)} {kind}: {', '.join(sorted(names))}")
    return 1 if args.fail_if_deleted else 0


if __name__ == "__main__":
    raise SystemExit(main())
