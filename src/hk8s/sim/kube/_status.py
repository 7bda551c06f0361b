"""Kubernetes ``Status`` errors, shaped as the API server sends them.

Messages and reasons follow k8s.io/apimachinery/pkg/api/errors (``NewNotFound``,
``NewAlreadyExists``, ``NewConflict``, ``NewInvalid``, ``NewTooManyRequests``, ...), because
clients (kubectl, the Python client, hk8s) branch on ``reason`` and ``code`` and show
``message`` to users.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KubeError", "success_status"]


def _qualified(resource: str, group: str) -> str:
    # errors.go: qualifiedResource.String() is "resource.group" or just "resource" for core.
    return f"{resource}.{group}" if group else resource


class KubeError(Exception):
    """An API error; ``status()`` is the JSON body, ``code`` the HTTP status."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body

    @classmethod
    def not_found(cls, resource: str, group: str, name: str) -> KubeError:
        details = {"name": name, "kind": resource, **({"group": group} if group else {})}
        return cls(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', details)

    @classmethod
    def already_exists(cls, resource: str, group: str, name: str) -> KubeError:
        details = {"name": name, "kind": resource, **({"group": group} if group else {})}
        message = f'{_qualified(resource, group)} "{name}" already exists'
        return cls(409, "AlreadyExists", message, details)

    @classmethod
    def conflict(cls, resource: str, group: str, name: str, why: str) -> KubeError:
        details = {"name": name, "kind": resource, **({"group": group} if group else {})}
        message = f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}'
        return cls(409, "Conflict", message, details)

    @classmethod
    def invalid(
        cls, kind: str, group: str, name: str, causes: list[tuple[str, str, str]]
    ) -> KubeError:
        """``causes`` are (field, reason type, message), e.g. FieldValueRequired."""
        qualified_kind = f"{kind}.{group}" if group else kind
        text = ", ".join(f"{field}: {message}" for field, _, message in causes)
        if len(causes) > 1:
            text = "[" + text + "]"
        details = {
            "name": name,
            "kind": kind,
            **({"group": group} if group else {}),
            "causes": [{"reason": t, "message": m, "field": f} for f, t, m in causes],
        }
        return cls(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {text}', details)

    @classmethod
    def bad_request(cls, message: str) -> KubeError:
        return cls(400, "BadRequest", message)

    @classmethod
    def method_not_allowed(cls, message: str) -> KubeError:
        return cls(405, "MethodNotAllowed", message)

    @classmethod
    def unauthorized(cls) -> KubeError:
        return cls(401, "Unauthorized", "Unauthorized")

    @classmethod
    def unavailable(cls, message: str) -> KubeError:
        return cls(503, "ServiceUnavailable", message, {"retryAfterSeconds": 1})

    @classmethod
    def too_many_requests(cls, message: str, retry_after: int, causes: list[Any]) -> KubeError:
        # metav1.StatusDetails.RetryAfterSeconds is omitempty: 0 is not sent.
        details: dict[str, Any] = {"retryAfterSeconds": retry_after} if retry_after else {}
        if causes:
            details["causes"] = causes
        return cls(429, "TooManyRequests", message, details)

    @classmethod
    def unsupported_media_type(cls, content_type: str) -> KubeError:
        accepted = (
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml, application/strategic-merge-patch+json"
        )
        return cls(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {accepted} (got {content_type})",
        )


def success_status(name: str, resource: str, group: str, uid: str) -> dict[str, Any]:
    """What DELETE returns for most resources (generic registry ``finalizeDelete``)."""
    details: dict[str, Any] = {"name": name, "kind": resource, "uid": uid}
    if group:
        details["group"] = group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }
