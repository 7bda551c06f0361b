"""Translate ``hcloud`` exceptions into ``hk8s.errors`` at the boundary.

The API's error ``code`` is kept in ``context["code"]`` so callers can tell
``uniqueness_error`` from ``resource_in_use`` without parsing messages. Messages name the
operation and the API's own text, never the token (it is only ever in a request header).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests
from hcloud import APIException, HCloudException

from hk8s.errors import (
    ActionFailedError,
    AuthError,
    ConflictError,
    Hk8sError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    TransientAPIError,
)

if TYPE_CHECKING:
    from hk8s.model.resources import Action

__all__ = ["action_failed", "translate"]

_AUTH = frozenset({"unauthorized", "forbidden", "token_readonly"})
_CONFLICT = frozenset(
    {
        "uniqueness_error",
        "resource_in_use",
        "protected",
        "placement_error",
        "resource_limit_exceeded",
        "already_in_placement_group",
        "firewall_already_applied",
        "firewall_managed_by_label_selector",
        "load_balancer_already_attached",
        "server_already_attached",
        "server_already_added",
        "source_port_already_used",
        "target_already_defined",
    }
)
_TRANSIENT = frozenset(
    {"locked", "conflict", "timeout", "unavailable", "server_error", "maintenance"}
)


def translate(exc: Exception, operation: str) -> Hk8sError:
    """The hk8s error for a library exception raised while doing ``operation``."""
    if isinstance(exc, Hk8sError):
        return exc
    if isinstance(exc, APIException):
        code = str(exc.code)
        text = f"{operation}: {exc.message} ({code})"
        context = {"code": code, "correlation_id": exc.correlation_id}
        if code in _AUTH or code in ("401", "403"):
            return AuthError(text, hint="check HCLOUD_TOKEN (read/write token)", **context)
        if code in ("not_found", "404"):
            return NotFoundError(text, **context)
        if code == "rate_limit_exceeded":
            return RateLimitedError(text, code=code, correlation_id=exc.correlation_id)
        if code in _TRANSIENT or code.startswith("5"):
            return TransientAPIError(text, **context)
        if code in _CONFLICT:
            return ConflictError(text, **context)
        return PermanentError(text, **context)
    if isinstance(exc, HCloudException):
        return PermanentError(f"{operation}: {exc}")
    if isinstance(exc, requests.RequestException):
        return TransientAPIError(f"{operation}: {type(exc).__name__}")
    if isinstance(exc, KeyError):
        # hcloud 2.27 indexes response bodies strictly: a missing key is a malformed answer.
        return TransientAPIError(f"{operation}: response without the expected field {exc}")
    raise exc


def action_failed(action: Action) -> ActionFailedError:
    return ActionFailedError(
        f"Hetzner action {action.command} failed: "
        f"{action.error_message or 'no message'} ({action.error_code or 'no code'})",
        action_id=action.id,
        command=action.command,
        code=action.error_code,
    )
