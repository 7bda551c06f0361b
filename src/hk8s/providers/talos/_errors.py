"""Translate grpclib, ssl and socket failures into the hk8s error tree.

Only this module knows grpclib's exceptions; everything above sees ``hk8s.errors`` classes.
The gRPC status codes Talos uses are documented by its handlers
(siderolabs/talos internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go):
``AlreadyExists`` from Bootstrap on a bootstrapped node, ``Unimplemented``/``PermissionDenied``
for calls a node in maintenance mode does not serve (internal/integration/provision/
maintenance_basic.go accepts exactly these), ``Unavailable`` from apid when a node is down.
"""

from __future__ import annotations

import ssl

from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from hk8s.errors import (
    AuthError,
    ConflictError,
    Hk8sError,
    NotFoundError,
    PermanentError,
    TransientAPIError,
    UnavailableError,
)

__all__ = ["MaintenanceModeError", "error_for_status", "translate"]

# TLS alerts a server sends when it refuses our client certificate (OpenSSL reason names).
_CLIENT_CERT_REFUSED = (
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "TLSV1_ALERT_ACCESS_DENIED",
)


class MaintenanceModeError(PermanentError):
    """The node does not serve this call: it is in maintenance mode (no machine config yet),
    or its Talos version lacks the call. Talos answers ``Unimplemented`` for both."""


def error_for_status(
    code: int | Status, message: str, *, node: str, call: str, insecure: bool = False
) -> Hk8sError:
    """The hk8s error for a gRPC status, from the call's reply or a node's ``metadata``."""
    status = Status(code) if not isinstance(code, Status) else code
    text = f"Talos {call} on {node}: {message or status.name}"
    if status is Status.UNAVAILABLE:
        return UnavailableError(
            text,
            hint="the node may still be booting or rebooting",
            node=node,
            grpc_status=status.name,
        )
    if status is Status.DEADLINE_EXCEEDED:
        return TransientAPIError(text, node=node, grpc_status=status.name)
    if status in (Status.PERMISSION_DENIED, Status.UNAUTHENTICATED):
        hint = (
            "a node in maintenance mode only serves a few calls without a client certificate; "
            "apply a machine config first, then use the cluster's talosconfig"
            if insecure
            else "the client certificate was refused: use the talosconfig of this cluster"
        )
        return AuthError(text, hint=hint, node=node, grpc_status=status.name)
    if status is Status.UNIMPLEMENTED:
        return MaintenanceModeError(
            text,
            hint="the node is in maintenance mode (apply a machine config first) "
            "or runs a Talos version without this call",
            node=node,
            grpc_status=status.name,
        )
    if status is Status.NOT_FOUND:
        return NotFoundError(text, node=node, grpc_status=status.name)
    if status in (Status.ALREADY_EXISTS, Status.FAILED_PRECONDITION):
        return ConflictError(text, node=node, grpc_status=status.name)
    if status in (Status.INVALID_ARGUMENT, Status.OUT_OF_RANGE, Status.DATA_LOSS):
        return PermanentError(text, node=node, grpc_status=status.name)
    # UNKNOWN (a plain Go error), INTERNAL, ABORTED, CANCELLED, RESOURCE_EXHAUSTED: Talos returns
    # these for conditions that pass (etcd not up yet, "another apply in progress").
    return TransientAPIError(text, node=node, grpc_status=status.name)


def translate(exc: BaseException, *, node: str, call: str, insecure: bool) -> Hk8sError | None:
    """The hk8s error for a library exception, or None when ``exc`` is not a transport error."""
    if isinstance(exc, Hk8sError):
        return exc
    if isinstance(exc, GRPCError):
        return error_for_status(
            exc.status, exc.message or "", node=node, call=call, insecure=insecure
        )
    if isinstance(exc, TimeoutError):
        return TransientAPIError(f"Talos {call} on {node}: timed out", node=node)
    if isinstance(exc, ssl.SSLCertVerificationError):
        # Also what a node serving its maintenance (self-signed) cert, or a not yet
        # rebooted node, looks like to an mTLS client: worth waiting for, not fatal.
        return UnavailableError(
            f"Talos {call} on {node}: the server certificate is not signed by the cluster CA "
            f"({exc.verify_message})",
            hint="the node may still be in maintenance mode or rebooting, or belong to "
            "another cluster",
            node=node,
        )
    if isinstance(exc, ssl.SSLError) and exc.reason in _CLIENT_CERT_REFUSED:
        return AuthError(
            f"Talos {call} on {node}: the node refused the client certificate ({exc.reason})",
            hint="use the talosconfig of this cluster",
            node=node,
        )
    if isinstance(exc, OSError | StreamTerminatedError | ProtocolError | EOFError):
        detail = str(exc) or type(exc).__name__
        return UnavailableError(
            f"Talos {call} on {node}: {detail}",
            hint="the node may still be booting, or port 50000 is not reachable",
            node=node,
        )
    return None
