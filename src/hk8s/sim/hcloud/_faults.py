"""Faults on demand, seeded so a failing run can be replayed (design.md section 6).

A ``FaultSpec`` is data: load it from YAML/JSON (``hk8s sim up --faults FILE``), build it in
Python, or ``POST /_sim/faults`` it to a running simulator. Example::

    seed: 7
    errors:                      # injected HTTP errors, before the request is handled
      - {method: POST, path: "/servers", rate: 0.5, code: 503}
      - {path: "/servers/*/actions/*", rate: 0.1, code: locked, limit: 3}
    actions:                     # actions that finish with status "error"
      - {command: create_image, rate: 1.0}
    latency:                     # extra response time in simulated seconds
      - {path: "*", distribution: uniform, min: 0.05, max: 0.3}
    never_running: ["*-worker-3"]   # servers (by name pattern) stuck in "starting" (until
                                    # the fault is cleared: then they finish booting)
    sold_out: ["cx23@fsn1", "cax*@*"]  # server types out of stock (type@location patterns)
    limits: {servers: 5}            # project limits -> 403 resource_limit_exceeded

``path`` patterns are ``fnmatch`` patterns matched against the path below ``/v1`` *and* the
route template (``/servers/{id}/actions/poweron``), so both ``/servers/*`` and
``/servers/{id}`` work.
"""

from __future__ import annotations

import fnmatch
import json
import random
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from hk8s.errors import ConfigError, ConfigProblem
from hk8s.sim.hcloud._errors import ApiError

__all__ = ["ActionFault", "ErrorFault", "FaultInjector", "FaultSpec", "LatencyFault"]

ErrorCode = Literal[
    500,
    502,
    503,
    504,
    429,
    "locked",
    "conflict",
    "timeout",
    "unavailable",
    "forbidden",
    "placement_error",
    "resource_unavailable",
]

LimitedCollection = Literal[
    "servers",
    "networks",
    "firewalls",
    "load_balancers",
    "placement_groups",
    "ssh_keys",
    "primary_ips",
]

_ERRORS: dict[str, tuple[str, int, str]] = {
    "500": ("server_error", 500, "internal server error (injected)"),
    "502": ("server_error", 502, "bad gateway (injected)"),
    "503": ("unavailable", 503, "service temporarily unavailable (injected)"),
    "504": ("timeout", 504, "the request could not be answered in time (injected)"),
    "unavailable": ("unavailable", 503, "service temporarily unavailable (injected)"),
    "timeout": ("timeout", 504, "the request could not be answered in time (injected)"),
    "429": ("rate_limit_exceeded", 429, "limit of 3600 requests per hour reached (injected)"),
    "locked": ("locked", 423, "resource is locked (injected)"),
    "conflict": ("conflict", 409, "resource has changed during the request, retry (injected)"),
    "forbidden": ("forbidden", 403, "insufficient permissions for this request (injected)"),
    # POST /servers documents 422 placement_error; the field reports 412 resource_unavailable
    # "error during placement" (jenkinsci/hetzner-cloud-plugin#21).
    "placement_error": ("placement_error", 422, "error during placement (injected)"),
    "resource_unavailable": ("resource_unavailable", 412, "error during placement (injected)"),
}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorFault(_Spec):
    method: str = "*"
    path: str = "*"
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    code: ErrorCode = 503
    # Stop injecting after this many hits (None: forever).
    limit: int | None = Field(default=None, ge=0)


class ActionFault(_Spec):
    command: str
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    code: str = "action_failed"
    message: str = "action failed (injected fault)"
    limit: int | None = Field(default=None, ge=0)


class LatencyFault(_Spec):
    method: str = "*"
    path: str = "*"
    distribution: Literal["fixed", "uniform", "exponential"] = "uniform"
    min: float = Field(default=0.0, ge=0.0)
    max: float = Field(default=0.0, ge=0.0)
    mean: float = Field(default=0.0, ge=0.0)


class FaultSpec(_Spec):
    seed: int = 0
    errors: list[ErrorFault] = Field(default_factory=list)
    actions: list[ActionFault] = Field(default_factory=list)
    latency: list[LatencyFault] = Field(default_factory=list)
    never_running: list[str] = Field(default_factory=list)
    # "<type>@<location>" fnmatch patterns: those types answer available: false there (a
    # sell-out, as CAX has had) and servers of them cannot be created there.
    sold_out: list[str] = Field(default_factory=list)
    # Project limits per collection (servers, networks, firewalls, load_balancers,
    # placement_groups, ssh_keys, primary_ips), as Hetzner sets them per project.
    limits: dict[LimitedCollection, int] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> FaultSpec:
        """Read a YAML or JSON fault file; problems are a ``ConfigError`` naming the file."""
        source = str(path)
        try:
            text = Path(path).read_text()
            data = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError(
                source, [ConfigProblem("$", f"cannot read fault spec: {exc}")]
            ) from exc
        return cls.parse(data or {}, source=source)

    @classmethod
    def parse(cls, data: object, *, source: str = "faults") -> FaultSpec:
        from pydantic import ValidationError

        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [
                ConfigProblem(".".join(str(p) for p in err["loc"]) or "$", err["msg"])
                for err in exc.errors()
            ]
            raise ConfigError(source, problems) from exc


def _matches(pattern_method: str, pattern_path: str, method: str, paths: tuple[str, ...]) -> bool:
    if pattern_method != "*" and pattern_method.upper() != method:
        return False
    return any(fnmatch.fnmatchcase(p, pattern_path) for p in paths)


class FaultInjector:
    """Applies a ``FaultSpec`` with its own seeded random generator."""

    def __init__(self, spec: FaultSpec | None = None) -> None:
        self.set(spec or FaultSpec())

    def set(self, spec: FaultSpec) -> None:
        self.spec = spec
        self._random = random.Random(spec.seed)
        self._hits: dict[int, int] = {}

    def _fire(self, key: int, rate: float, limit: int | None) -> bool:
        if limit is not None and self._hits.get(key, 0) >= limit:
            return False
        if rate < 1.0 and self._random.random() >= rate:
            return False
        self._hits[key] = self._hits.get(key, 0) + 1
        return True

    def request_error(self, method: str, path: str, route: str) -> ApiError | None:
        for index, fault in enumerate(self.spec.errors):
            if _matches(fault.method, fault.path, method, (path, route)) and self._fire(
                index, fault.rate, fault.limit
            ):
                code, status, message = _ERRORS[str(fault.code)]
                return ApiError(code, message, status=status)
        return None

    def latency(self, method: str, path: str, route: str) -> float:
        total = 0.0
        for fault in self.spec.latency:
            if not _matches(fault.method, fault.path, method, (path, route)):
                continue
            if fault.distribution == "fixed":
                total += fault.min
            elif fault.distribution == "uniform":
                total += self._random.uniform(fault.min, max(fault.min, fault.max))
            else:
                total += self._random.expovariate(1.0 / fault.mean) if fault.mean else 0.0
        return total

    def action_error(self, command: str) -> tuple[str, str] | None:
        for index, fault in enumerate(self.spec.actions):
            if fnmatch.fnmatchcase(command, fault.command) and self._fire(
                1000 + index, fault.rate, fault.limit
            ):
                return fault.code, fault.message
        return None

    def sold_out(self, server_type: str, location: str) -> bool:
        return any(fnmatch.fnmatchcase(f"{server_type}@{location}", p) for p in self.spec.sold_out)

    def never_running(self, server_name: str) -> bool:
        return any(fnmatch.fnmatchcase(server_name, p) for p in self.spec.never_running)
