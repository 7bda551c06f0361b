"""Endpoint parsing and the gRPC status -> hk8s error table."""

from __future__ import annotations

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from hk8s.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermanentError,
    TransientAPIError,
    UnavailableError,
    UsageError,
)
from hk8s.providers.talos import Endpoint, MaintenanceModeError
from hk8s.providers.talos._errors import error_for_status, translate


@pytest.mark.parametrize(
    ("text", "host", "port", "shown"),
    [
        ("10.0.1.2", "10.0.1.2", 50000, "10.0.1.2"),
        ("10.0.1.2:50001", "10.0.1.2", 50001, "10.0.1.2:50001"),
        ("cp.example.com", "cp.example.com", 50000, "cp.example.com"),
        ("[2a01:4f8::1]:50000", "2a01:4f8::1", 50000, "[2a01:4f8::1]"),
        ("2a01:4f8::1", "2a01:4f8::1", 50000, "[2a01:4f8::1]"),
    ],
)
def test_endpoints_default_to_the_talos_port(text: str, host: str, port: int, shown: str) -> None:
    endpoint = Endpoint.parse(text)
    assert (endpoint.host, endpoint.port, str(endpoint)) == (host, port, shown)


@pytest.mark.parametrize("text", ["", "10.0.0.1:http", "10.0.0.1:70000", ":50000"])
def test_bad_endpoints_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        Endpoint.parse(text)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status.UNAVAILABLE, UnavailableError),
        (Status.DEADLINE_EXCEEDED, TransientAPIError),
        (Status.PERMISSION_DENIED, AuthError),
        (Status.UNAUTHENTICATED, AuthError),
        (Status.UNIMPLEMENTED, MaintenanceModeError),
        (Status.NOT_FOUND, NotFoundError),
        (Status.ALREADY_EXISTS, ConflictError),
        (Status.FAILED_PRECONDITION, ConflictError),
        (Status.INVALID_ARGUMENT, PermanentError),
        (Status.UNKNOWN, TransientAPIError),
        (Status.INTERNAL, TransientAPIError),
    ],
)
def test_grpc_status_maps_into_the_error_tree(status: Status, expected: type) -> None:
    err = translate(GRPCError(status, "boom"), node="n1", call="Version", insecure=False)
    assert type(err) is expected
    assert err is not None and "n1" in str(err) and "boom" in str(err)
    assert err.retryable == issubclass(expected, UnavailableError | TransientAPIError)


def test_permission_denied_in_insecure_mode_points_at_maintenance_mode() -> None:
    err = error_for_status(Status.PERMISSION_DENIED, "", node="n", call="Reboot", insecure=True)
    assert err.hint and "maintenance mode" in err.hint


def test_connection_failures_are_unavailable_and_others_pass_through() -> None:
    for exc in (ConnectionRefusedError(111, "refused"), StreamTerminatedError("Connection lost")):
        assert isinstance(translate(exc, node="n", call="c", insecure=True), UnavailableError)
    assert translate(ValueError("bug"), node="n", call="c", insecure=True) is None
