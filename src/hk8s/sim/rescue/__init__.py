"""Simulated Hetzner rescue systems: an SSH server per server in rescue mode, a small shell
for the image-build commands, and each server's simulated disk."""

from __future__ import annotations

from hk8s.sim.rescue._commands import rescue_shell
from hk8s.sim.rescue._disk import MAX_DISK_CONTENT, DiskError, SimulatedDisk
from hk8s.sim.rescue._net import loopback_http_get
from hk8s.sim.rescue._server import RESCUE_SSH_PORT, RescueServer, new_host_key
from hk8s.sim.rescue._shell import CommandResult, Machine, Shell

__all__ = [
    "MAX_DISK_CONTENT",
    "RESCUE_SSH_PORT",
    "CommandResult",
    "DiskError",
    "Machine",
    "RescueServer",
    "Shell",
    "SimulatedDisk",
    "loopback_http_get",
    "new_host_key",
    "rescue_shell",
]
