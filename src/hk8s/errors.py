"""The hk8s error tree.

Every error hk8s raises on purpose is an ``Hk8sError``. Adapters in ``providers/`` translate
library exceptions at the boundary (``raise X from exc``), so the layers above never see an
``hcloud``, ``grpclib``, ``paramiko`` or ``kubernetes`` exception. Only ``cli/`` turns errors
into messages and exit codes.

Each class says whether trying again can help (``retryable``): the retry helpers look at that
flag, never at the class name::

    Hk8sError                       exit 1 unless stated
    ├── UsageError                  exit 2: bad flags or arguments, nothing was changed
    │                               (exit 1 if the run had already changed something)
    │   └── ConfigError             exit 2: cluster.yaml is invalid (carries every problem)
    ├── PermanentError              trying again will not help
    │   ├── NotFoundError           a resource or node that must exist does not
    │   ├── ConflictError           the world disagrees with the request (name taken by a
    │   │                           resource hk8s does not own, two matches where one is
    │   │                           expected, already bootstrapped, ...)
    │   ├── AuthError               the token or client certificate was refused
    │   ├── SecretsError            secrets bundle missing, unreadable or of another cluster
    │   ├── ActionFailedError       a Hetzner action ended in status "error"
    │   └── ProtectionError         the cluster is protected against this operation
    ├── RetryableError              a later attempt may succeed
    │   ├── TransientAPIError       5xx, locked, conflict, connection reset
    │   ├── RateLimitedError        HTTP 429; ``reset_at`` says when the bucket refills
    │   └── UnavailableError        a node or endpoint is not reachable (yet)
    ├── WaitTimeoutError            a named condition was not met in time
    └── OperationsFailedError       several independent operations failed (``errors`` holds all)

Interruption (Ctrl-C) is not an Hk8sError: it stays ``KeyboardInterrupt`` and exits 130.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ActionFailedError",
    "AuthError",
    "ConfigError",
    "ConfigProblem",
    "ConflictError",
    "Hk8sError",
    "NotFoundError",
    "OperationsFailedError",
    "PermanentError",
    "ProtectionError",
    "RateLimitedError",
    "RetryableError",
    "SecretsError",
    "TransientAPIError",
    "UnavailableError",
    "UsageError",
    "WaitTimeoutError",
]


class Hk8sError(Exception):
    """Root of every error hk8s raises on purpose.

    ``hint`` tells the user what to do about it; ``context`` carries identifiers (action id,
    node, request id) that help to find the event in logs.
    """

    retryable: bool = False
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.context = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        text = self.message
        if self.context:
            details = ", ".join(f"{k}={v}" for k, v in self.context.items())
            text = f"{text} ({details})"
        return text


class UsageError(Hk8sError):
    """Bad flags or arguments; raised before anything is changed."""

    exit_code = 2


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file: where it is and what to do about it."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    def location(self) -> str:
        if self.line is None:
            return self.path
        return f"{self.path} (line {self.line}:{self.column or 1})"

    def __str__(self) -> str:
        text = f"{self.location()}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class ConfigError(UsageError):
    """cluster.yaml is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, source: str, problems: Sequence[ConfigProblem]) -> None:
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{source}: {count} {noun} found")
        self.source = source
        self.problems = list(problems)

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        return "\n".join(lines)


class PermanentError(Hk8sError):
    """Trying again with the same input will not help."""


class NotFoundError(PermanentError):
    """A resource or node that must exist does not."""


class ConflictError(PermanentError):
    """The world disagrees with the request: a name owned by someone else, duplicates, ..."""


class AuthError(PermanentError):
    """Credentials were refused (Hetzner token, Talos or Kubernetes client certificate)."""


class SecretsError(PermanentError):
    """The secrets bundle is missing, unreadable, or belongs to another cluster."""


class ActionFailedError(PermanentError):
    """A Hetzner action finished with status ``error``."""


class ProtectionError(PermanentError):
    """The cluster's ``protection`` setting forbids this operation."""


class RetryableError(Hk8sError):
    """A later attempt may succeed; retry helpers back off and try again."""

    retryable = True


class TransientAPIError(RetryableError):
    """5xx, ``locked``, ``conflict``, timeouts and resets from an API."""


class RateLimitedError(RetryableError):
    """HTTP 429. ``reset_at`` is the clock time at which the bucket is full again, if known."""

    def __init__(
        self,
        message: str,
        *,
        reset_at: float | None = None,
        hint: str | None = None,
        **context: object,
    ) -> None:
        super().__init__(message, hint=hint, **context)
        self.reset_at = reset_at


class UnavailableError(RetryableError):
    """A node or endpoint does not answer (yet): connection refused, TLS not up, booting."""


class WaitTimeoutError(Hk8sError):
    """A named condition was not met before its deadline."""

    def __init__(self, condition: str, timeout: float, *, last_error: str | None = None) -> None:
        message = f"timed out after {timeout:.0f}s waiting for {condition}"
        if last_error:
            message += f": last error: {last_error}"
        super().__init__(message)
        self.condition = condition
        self.timeout = timeout
        self.last_error = last_error


class OperationsFailedError(Hk8sError):
    """Several independent operations failed; ``errors`` holds each one, none is lost."""

    def __init__(self, phase: str, errors: Sequence[BaseException]) -> None:
        super().__init__(f"{phase}: {len(errors)} operation(s) failed")
        self.phase = phase
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  - {e}" for e in self.errors)])
