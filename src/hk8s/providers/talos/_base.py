"""Targeting (which nodes a call runs on) and per-node result collection.

Talos separates *endpoints* (where the client connects; apid there proxies) from *nodes*
(where the call runs), as talosctl's ``--endpoints``/``--nodes`` do. The target goes in gRPC
metadata (siderolabs/talos pkg/machinery/client/context.go): ``nodes`` (one value per node)
for a one-to-many call whose replies apid aggregates, ``node`` for a one-to-one proxy (used for
streams, which cannot be aggregated). Without either, the endpoint itself answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from hk8s.errors import UnavailableError, UsageError
from hk8s.model import SystemClock, Timing
from hk8s.providers.talos._errors import error_for_status
from hk8s.providers.talos._tls import client_context
from hk8s.providers.talos._transport import Endpoint, Metadata, Transport
from hk8s.providers.talos._types import NodeResult

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from hk8s.model import Clock
    from hk8s.providers.talos._tls import TalosCredentials

T = TypeVar("T")
Self = TypeVar("Self", bound="ClientBase")


class ClientBase:
    """Connection, target and the helpers every group of calls uses."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        credentials: TalosCredentials | None = None,
        insecure: bool = False,
        nodes: Sequence[str] = (),
        timing: Timing | None = None,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if (credentials is None) == (not insecure):
            raise UsageError(
                "a Talos client needs either credentials (mTLS) or insecure=True (maintenance)"
            )
        context = client_context(credentials)  # one per credential set, for every node
        self._transport = Transport(
            [Endpoint.parse(e) for e in endpoints],
            context,
            insecure=insecure,
            timing=timing or Timing(),
            clock=clock or SystemClock(),
            environ=environ,
        )
        self.nodes: tuple[str, ...] = tuple(nodes)

    def with_nodes(self: Self, *nodes: str) -> Self:
        """The same connection aimed at ``nodes`` (none: the endpoint itself)."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.nodes = tuple(nodes)
        return view

    @property
    def insecure(self) -> bool:
        return self._transport.insecure

    async def __aenter__(self: Self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every channel (shared with views from ``with_nodes``)."""
        self._transport.close()

    # -- targeting -------------------------------------------------------------------------

    def _fanout(self) -> tuple[Metadata, str | None]:
        if not self.nodes:
            return [], None
        return [("nodes", n) for n in self.nodes], ",".join(self.nodes)

    def _one(self, node: str | None) -> tuple[Metadata, str | None]:
        """Metadata for a one-node call: ``node``, else the client's single node, else none."""
        if node is None:
            if len(self.nodes) > 1:
                raise UsageError(
                    f"this call runs on one node, but {len(self.nodes)} are targeted",
                    hint="pass node=... or use with_nodes() with one node",
                )
            node = self.nodes[0] if self.nodes else None
        return ([("node", node)], node) if node else ([], None)

    # -- replies ---------------------------------------------------------------------------

    def _collect(
        self,
        call: str,
        messages: Iterable[Any],
        convert: Callable[[Any], T],
        answered_by: Endpoint,
    ) -> list[NodeResult[T]]:
        """One ``NodeResult`` per reply message, plus one error per targeted node that sent
        none: per-node failures are values here, never dropped."""
        default = self.nodes[0] if len(self.nodes) == 1 else answered_by.host
        results: list[NodeResult[T]] = []
        for message in messages:
            meta = message.metadata
            node = meta.hostname or default
            if meta.error:
                code = meta.status.code if meta.HasField("status") else 2  # UNKNOWN
                err = error_for_status(
                    code, meta.error, node=node, call=call, insecure=self.insecure
                )
                results.append(NodeResult(node, error=err))
            else:
                results.append(NodeResult(node, value=convert(message)))
        seen = {r.node for r in results}
        for node in self.nodes:
            if node not in seen:
                results.append(
                    NodeResult(
                        node,
                        error=UnavailableError(f"Talos {call}: no reply from {node}", node=node),
                    )
                )
        return results
