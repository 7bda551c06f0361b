"""Fixtures: a fast simulator in a thread, the official hcloud client, and a check of every
response the simulator sends against the OpenAPI response schema of its operation."""

from __future__ import annotations

import json
import re
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

import hcloud
import jsonschema
import pytest
import referencing

import _reference
from hk8s.sim.hcloud import HcloudSim, RequestRecord, ThreadedSim

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from hk8s.sim._http import Request, Response

SPEC_PATH = _reference.REFERENCE / "hcloud/openapi.json"
SPEC_URI = "urn:hcloud-openapi"
SPEED = 200.0

# Deliberate deviations from openapi.json, each forced by the hcloud 2.27 client:
# DELETE /load_balancers/{id}: the spec says 204, hcloud-python 2.27 reads response["action"]
# (load_balancers/client.py delete); answer like DELETE /servers/{id} (200 + action).
DEVIATIONS = {("delete", "/load_balancers/{id}", 200): ("delete", "/servers/{id}")}


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` -> JSON Schema ``null`` in the type (or an anyOf)."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable(value) for key, value in node.items()}
    if out.pop("nullable", False):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


class OpenApiValidator:
    """Maps method + path to its operation and validates the response body against it."""

    def __init__(self, path: Path) -> None:
        spec = json.loads(path.read_text())
        self.spec = _nullable(spec)
        resource = referencing.Resource.from_contents(self.spec, referencing.jsonschema.DRAFT202012)
        self.registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            SPEC_URI, resource
        )
        self.operations: list[tuple[str, re.Pattern[str], str]] = []
        for template, ops in self.spec["paths"].items():
            regex = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")
            for method in ops:
                self.operations.append((method, regex, template))
        # Literal segments win over parameters (/servers/actions before /servers/{id}).
        self.operations.sort(key=lambda op: op[2].count("{"))

    def operation(self, method: str, path: str) -> str | None:
        for op_method, regex, template in self.operations:
            if op_method == method and regex.match(path):
                return template
        return None

    def problems(self, method: str, path: str, status: int, body: bytes) -> list[str]:
        method = method.lower()
        template = self.operation(method, path)
        if template is None and status < 400:
            return [f"{method.upper()} {path}: no such operation in openapi.json"]
        if template is None:  # an error for an unknown path: the common error envelope
            method, template = "get", "/servers"
        op_method, op_template = DEVIATIONS.get((method, template, status), (method, template))
        responses = self.spec["paths"][op_template][op_method]["responses"]
        key = next((k for k in (str(status), f"{str(status)[0]}xx") if k in responses), None)
        if key is None:
            return [f"{method.upper()} {path}: status {status} is not documented"]
        content = responses[key].get("content", {}).get("application/json")
        if content is None:
            return [] if not body else [f"{method.upper()} {path} {status}: body must be empty"]
        pointer = "/".join(
            part.replace("~", "~0").replace("/", "~1")
            for part in (
                "paths",
                op_template,
                op_method,
                "responses",
                key,
                "content",
                "application/json",
                "schema",
            )
        )
        schema = {"$ref": f"{SPEC_URI}#/{pointer}"}
        validator = jsonschema.Draft202012Validator(schema, registry=self.registry)
        try:
            document = json.loads(body)
        except ValueError:
            return [f"{method.upper()} {path} {status}: body is not JSON"]
        return [
            f"{method.upper()} {path} {status}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)
        ]


@cache
def openapi() -> OpenApiValidator:
    return OpenApiValidator(SPEC_PATH)


class ResponseChecker:
    """Observer on the simulator: validates every /v1 response; tests fail on any problem."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.checked = 0
        self._lock = threading.Lock()

    def __call__(self, record: RequestRecord, request: Request, response: Response) -> None:
        path = request.path.removeprefix("/v1")
        problems = openapi().problems(request.method, path, response.status, response.body)
        # "Rate Limiting": every response carries the three RateLimit headers.
        missing = {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} - set(
            response.headers
        )
        if missing:
            problems.append(f"{request.method} {path}: no {sorted(missing)} headers")
        if response.status == 500 and b"internal error" in response.body:  # a simulator bug
            problems.append(f"{request.method} {path}: {response.body.decode()}")
        with self._lock:
            self.checked += 1
            self.problems += problems


@pytest.fixture
def checker() -> ResponseChecker:
    return ResponseChecker()


@pytest.fixture
def threaded(checker: ResponseChecker) -> Iterator[ThreadedSim]:
    sim_runner = ThreadedSim(speed=SPEED)
    with sim_runner as sim:
        sim.api.observers.append(checker)
        yield sim_runner
    assert checker.problems == [], "responses that break openapi.json:\n" + "\n".join(
        checker.problems
    )


@pytest.fixture
def sim(threaded: ThreadedSim) -> HcloudSim:
    return threaded.sim


@pytest.fixture
def client(sim: HcloudSim) -> hcloud.Client:
    return hcloud.Client(
        token=sim.token, api_endpoint=sim.endpoint, poll_interval=0.01, poll_max_retries=2000
    )
