"""One node of a cluster: the server config asks for and the server that exists for it.

Apart from ``_nodes`` (which configures them) so that what waits on nodes, reboots them or
reads their versions can name the type without importing the configuration machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hk8s.errors import NotFoundError

if TYPE_CHECKING:
    from hk8s.controller._servers import DesiredServer
    from hk8s.model.resources import Server

__all__ = ["Node"]


@dataclass(frozen=True)
class Node:
    """A desired server and the server that exists for it."""

    desired: DesiredServer
    server: Server

    @property
    def name(self) -> str:
        return self.desired.name

    @property
    def address(self) -> str:
        """Where hk8s dials the node's Talos API (its public IPv4)."""
        if not self.server.public_ipv4:
            raise NotFoundError(f"server {self.name} has no public IPv4 address")
        return self.server.public_ipv4

    @property
    def private_ip(self) -> str | None:
        return self.server.private_ips[0].ip if self.server.private_ips else None
