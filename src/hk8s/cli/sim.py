"""``hk8s sim up``: run the simulated Hetzner Cloud on this machine, in the foreground.

It prints the environment to export in another shell, then serves until Ctrl-C. Everything
binds to loopback addresses, so it runs as a normal user.
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 (typer reads the annotations at runtime)
from typing import Annotated

import typer

from hk8s.cli._output import Output

__all__ = ["register"]

group = typer.Typer(
    name="sim",
    help="Run the built-in simulated Hetzner Cloud (and, as it grows, Talos and Kubernetes).",
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
    port: Annotated[int, typer.Option("--port", help="Port of the API (0: any free).")] = 0,
    token: Annotated[
        str | None,
        typer.Option("--token", show_default=False, help="Token to accept (default: random)."),
    ] = None,
) -> None:
    """Serve the simulated Hetzner Cloud API until interrupted; print what to export."""
    import asyncio

    from hk8s.sim.hcloud import FaultSpec, HcloudSim

    spec = FaultSpec.load(faults) if faults is not None else None
    out = Output.of(ctx)

    async def serve() -> None:
        async with HcloudSim.start(
            host=host, port=port, speed=speed, faults=spec, token=token
        ) as sim:
            env = sim.env()
            text = "\n".join(f"export {key}={value}" for key, value in env.items())
            out.result({"env": env}, text)
            out.info(f"simulated Hetzner Cloud at {sim.endpoint} (speed {speed:g}); Ctrl-C stops")
            await asyncio.Event().wait()

    asyncio.run(serve())


def register(app: typer.Typer) -> None:
    app.add_typer(group)
