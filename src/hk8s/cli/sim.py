"""``hk8s sim up``: run the simulated world on this machine, in the foreground.

The world is the Hetzner Cloud API with the image factory, rescue systems, Talos nodes and
Kubernetes behind it (``hk8s.sim.world``); ``--hcloud-only`` serves just the Hetzner API.
It prints the environment to export in another shell, then serves until Ctrl-C. Everything
binds to loopback addresses, so it runs as a normal user.
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 (typer reads the annotations at runtime)
from typing import Annotated

import typer

from hk8s.cli._output import Output
from hk8s.errors import UsageError

__all__ = ["register"]

group = typer.Typer(
    name="sim",
    help="Run the built-in simulated Hetzner Cloud, Talos and Kubernetes world.",
    no_args_is_help=True,
)


@group.command("up")
def up(
    ctx: typer.Context,
    speed: Annotated[
        float, typer.Option("--speed", min=0.001, help="Run simulated time N times faster.")
    ] = 1.0,
    faults: Annotated[
        Path | None,
        typer.Option("--faults", dir_okay=False, exists=True, help="Fault spec (YAML or JSON)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Loopback address to serve on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option("--port", help="Port of the Hetzner API (0: any free; --hcloud-only).")
    ] = 0,
    token: Annotated[
        str | None,
        typer.Option("--token", show_default=False, help="Token to accept (default: random)."),
    ] = None,
    hcloud_only: Annotated[
        bool, typer.Option("--hcloud-only", help="Serve only the Hetzner Cloud API.")
    ] = False,
) -> None:
    """Serve the simulated world until interrupted; print what to export."""
    import asyncio

    out = Output.of(ctx)
    _check_loopback(host)

    def announce(env: dict[str, str], endpoint: str) -> None:
        out.result({"env": env}, "\n".join(f"export {k}={v}" for k, v in env.items()))
        what = "Hetzner Cloud API" if hcloud_only else "world"
        out.info(f"simulated {what} at {endpoint} (speed {speed:g}); Ctrl-C stops")

    if hcloud_only:
        from hk8s.sim.hcloud import FaultSpec, HcloudSim

        spec = FaultSpec.load(faults) if faults is not None else None

        async def serve_hcloud() -> None:
            async with HcloudSim.start(
                host=host, port=port, speed=speed, faults=spec, token=token
            ) as sim:
                announce(sim.env(), sim.endpoint)
                await asyncio.Event().wait()

        asyncio.run(serve_hcloud())
        return

    if port:
        raise UsageError(
            "--port applies to --hcloud-only", hint="drop --port, or add --hcloud-only"
        )
    from hk8s.sim.world import WorldFaults, run_world

    world_faults = WorldFaults.load(faults) if faults is not None else None
    asyncio.run(
        run_world(
            speed=speed,
            faults=world_faults,
            token=token,
            host=host,
            ready=lambda world: announce(world.env(), world.hcloud.endpoint),
        )
    )


def _check_loopback(host: str) -> None:
    """The world has no authentication worth the name and hands out rescue root shells: it
    serves on loopback addresses only (127.0.0.0/8, ::1), never on a routable one."""
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(
            f"--host {host}: the simulator serves on loopback addresses only",
            hint="use an address in 127.0.0.0/8 (default 127.0.0.1)",
        )


def register(app: typer.Typer) -> None:
    app.add_typer(group)
