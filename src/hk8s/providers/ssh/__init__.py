"""SSH to Hetzner rescue systems, for ``hk8s image build`` (the only user of paramiko).

Usage::

    key = generate_ed25519_key("hk8s-build-demo-amd64")  # register key.public_openssh
    shell = ParamikoShell(clock=clock, timing=timing)  # honours HK8S_PORT_MAP
    await shell.connect(server_ip, key, timeout=timing.boot_timeout)
    result = await shell.run("lsblk -dn -o NAME,TYPE", timeout=timing.request_timeout)

Use a ``ScaledClock`` (or the system clock) with a real connection: command deadlines are clock
sleeps, and a ``ManualClock`` jumps straight to them.
"""

from __future__ import annotations

from hk8s.providers.ssh._keys import SSHKeyPair, generate_ed25519_key
from hk8s.providers.ssh._paramiko import ParamikoShell
from hk8s.providers.ssh._port import CommandFailedError, CommandResult, RemoteShell

__all__ = [
    "CommandFailedError",
    "CommandResult",
    "ParamikoShell",
    "RemoteShell",
    "SSHKeyPair",
    "generate_ed25519_key",
]
