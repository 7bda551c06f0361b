"""API errors as the Hetzner Cloud API reports them.

Every failure the simulated API returns is an ``ApiError`` carrying the HTTP status and the
error envelope ``{"error": {"code", "message", "details"}}`` (docs.hetzner.cloud "Errors";
openapi.json ``info.description``). Statuses follow that table, e.g. ``invalid_input`` is 422.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "invalid_input", "locked", "not_found", "uniqueness_error"]

# Status per error code, from the "Error Codes" table of the API reference.
STATUS_BY_CODE: dict[str, int] = {
    "json_error": 400,
    "unauthorized": 401,
    "token_readonly": 401,
    "forbidden": 403,
    "maintenance": 403,
    "resource_limit_exceeded": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "uniqueness_error": 409,
    "conflict": 409,
    "deprecated_api_endpoint": 410,
    "resource_unavailable": 412,
    "invalid_input": 422,
    "service_error": 422,
    "unsupported_error": 422,
    "locked": 423,
    "protected": 423,
    "rate_limit_exceeded": 429,
    "server_error": 500,
    "unavailable": 503,
    "timeout": 504,
}


class ApiError(Exception):
    """One error response of the simulated API."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # Operation-specific codes (server_not_stopped, ip_not_available, ...) are 422 in the
        # per-endpoint tables of the reference unless stated otherwise.
        self.status = status or STATUS_BY_CODE.get(code, 422)
        self.details = details

    def envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def invalid_input(field: str, *messages: str) -> ApiError:
    """``invalid_input`` with ``details.fields`` as in the reference's example response."""
    text = ", ".join(messages) or "is invalid"
    return ApiError(
        "invalid_input",
        f"invalid input in field '{field}': {text}",
        details={"fields": [{"name": field, "messages": list(messages or ("is invalid",))}]},
    )


def uniqueness_error(field: str, message: str) -> ApiError:
    return ApiError("uniqueness_error", message, details={"fields": [{"name": field}]})


def not_found(kind: str, ident: object = None) -> ApiError:
    what = f"{kind} with ID {ident}" if ident is not None else kind
    return ApiError("not_found", f"{what} not found")


def locked(kind: str, ident: int) -> ApiError:
    return ApiError("locked", f"{kind} {ident} is locked (an action is running)")
