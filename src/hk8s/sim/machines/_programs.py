"""Containers whose image the world plays as a program (talos-backup), as a kubelet runs them.

Most simulated containers run nothing (their state is status the kubelet writes). A few images
the world registers by repository (without tag or digest) run a Python stand-in for the real
program, which talks the same wire protocols the real one would. The kubelet hands it what a
container sees (``PodRun``): the environment as kubelet builds it (``env`` values,
``secretKeyRef``/``configMapKeyRef`` and ``envFrom`` resolved through the API, as
``kubelet_pods.go`` ``makeEnvironmentVariables`` does) and the files of its Secret and ConfigMap
volumes at ``<mountPath>/<key>`` (or the ``items`` paths); the program's exit code becomes the
container's ``terminated.exitCode`` and its output the container log.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from hk8s.sim.k8s import KubeClient

__all__ = ["PodRun", "Program", "pod_run", "program_for"]

Obj = dict[str, Any]
_VOLUMES = (("secret", "secrets", "secretName"), ("configMap", "configmaps", "name"))


@dataclass(frozen=True)
class PodRun:
    """A container as its program sees it: its environment and its mounted files."""

    namespace: str
    pod: str
    node: str
    env: dict[str, str]
    files: dict[str, bytes]


# A program: the container's view in, (exit code, output) out.
Program: TypeAlias = Callable[[PodRun], Awaitable[tuple[int, str]]]


def program_for(programs: dict[str, Program], pod: Obj) -> Program | None:
    """The world's program for the pod's first container image (by repository), if any."""
    image = str(pod["spec"]["containers"][0].get("image") or "")
    repository = image.split("@", 1)[0]
    if repository.rsplit("/", 1)[-1].count(":"):
        repository = repository.rsplit(":", 1)[0]
    return programs.get(repository)


class _Data:
    """Secrets' and ConfigMaps' data of one namespace, each read once per run."""

    def __init__(self, api: KubeClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self._cache: dict[tuple[str, str], dict[str, bytes]] = {}

    async def of(self, plural: str, name: str) -> dict[str, bytes]:
        key = (plural, name)
        if key not in self._cache:
            obj = await self.api.get_or_none(f"/api/v1/namespaces/{self.namespace}/{plural}/{name}")
            data: dict[str, bytes] = {}
            if obj is not None and plural == "secrets":
                data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
            elif obj is not None:
                data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
            self._cache[key] = data
        return self._cache[key]


async def pod_run(api: KubeClient, pod: Obj) -> PodRun:
    """The first container's environment and Secret/ConfigMap volume files."""
    meta, spec = pod["metadata"], pod["spec"]
    data = _Data(api, meta["namespace"])
    container = spec["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for kind, plural in (("secretRef", "secrets"), ("configMapRef", "configmaps")):
            ref = source.get(kind)
            if ref:
                prefix = str(source.get("prefix") or "")
                for key, value in (await data.of(plural, ref["name"])).items():
                    env[prefix + key] = value.decode(errors="replace")
    for item in container.get("env") or []:
        value_from = item.get("valueFrom") or {}
        for kind, plural in (("secretKeyRef", "secrets"), ("configMapKeyRef", "configmaps")):
            ref = value_from.get(kind)
            if ref:
                found = (await data.of(plural, ref["name"])).get(ref["key"])
                if found is not None:
                    env[item["name"]] = found.decode(errors="replace")
        if "value" in item:
            env[item["name"]] = str(item["value"])
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    files: dict[str, bytes] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"]) or {}
        for kind, plural, ref in _VOLUMES:
            source = volume.get(kind)
            if not source:
                continue
            content = await data.of(plural, str(source.get(ref)))
            paths = {i["key"]: i["path"] for i in source.get("items") or []} or {
                k: k for k in content
            }
            for key, path in paths.items():
                if key in content:
                    files[f"{mount['mountPath'].rstrip('/')}/{path}"] = content[key]
    return PodRun(meta["namespace"], meta["name"], spec.get("nodeName") or "", env, files)
