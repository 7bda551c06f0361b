"""What a Job running ``helm upgrade --install`` does in the simulated cluster.

hk8s installs addons with an in-cluster Job whose container runs ``helm upgrade --install
<release> <chart> --repo <url> --version <v> --namespace <ns> --create-namespace --values
/values/values.yaml`` (team brief, addon contract). The simulator parses those arguments the way
helm 3 does, reads the values file from the volume mounted into the pod, renders the chart from
``_charts.CATALOG`` and applies the objects like helm (labels, release annotations, a release
Secret per revision). Failures exit 1 with helm's own error wording, so the Job fails and its
log says why.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.sim.k8s import ApiError
from hk8s.sim.machines._charts import CATALOG

if TYPE_CHECKING:
    from hk8s.sim.k8s import KubeClient
    from hk8s.sim.machines._api import Resources
    from hk8s.sim.machines._helmbin import RealHelm

__all__ = ["HelmError", "HelmFaults", "helm_argv", "release_name", "run_helm"]

Obj = dict[str, Any]
_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_VALUE_FLAGS = {
    "--repo",
    "--version",
    "--namespace",
    "-n",
    "--values",
    "-f",
    "--set",
    "--set-string",
    "--timeout",
    "--kube-context",
    "--username",
    "--password",
    "--post-renderer",
    "--description",
}
_BOOL_FLAGS = {
    "--install",
    "-i",
    "--create-namespace",
    "--wait",
    "--wait-for-jobs",
    "--atomic",
    "--reuse-values",
    "--reset-values",
    "--reset-then-reuse-values",
    "--force",
    "--debug",
    "--skip-crds",
    "--cleanup-on-fail",
    "--devel",
    "--dry-run",
    "--insecure-skip-tls-verify",
    "--no-hooks",
}


@dataclass
class HelmFaults:
    """Failures on demand: by release name, slow releases, chart versions that do not exist."""

    failing_releases: dict[str, str] = field(default_factory=dict)
    slow_releases: dict[str, float] = field(default_factory=dict)
    unknown_versions: set[tuple[str, str]] = field(default_factory=set)


class HelmError(Exception):
    """A helm failure: the message is what helm prints after ``Error: ``; ``log``, when helm
    itself ran, is all it printed."""

    def __init__(self, message: str, log: str | None = None) -> None:
        super().__init__(message)
        self.log = log


def helm_argv(pod: Obj) -> list[str] | None:
    """The helm arguments a pod's first container runs, or None if it does not run helm."""
    containers = (pod.get("spec") or {}).get("containers") or []
    if not containers:
        return None
    argv = [
        str(a) for a in [*(containers[0].get("command") or []), *(containers[0].get("args") or [])]
    ]
    if len(argv) >= 3 and posixpath.basename(argv[0]) in ("sh", "bash", "ash") and argv[1] == "-c":
        argv = shlex.split(argv[2])
    if argv and posixpath.basename(argv[0]) == "helm":
        return argv[1:]
    return None


def _parse(args: list[str]) -> tuple[list[str], dict[str, list[str]], set[str]]:
    positional: list[str] = []
    options: dict[str, list[str]] = {}
    flags: set[str] = set()
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if arg.startswith("-") and name in _VALUE_FLAGS:
            if eq:
                value = inline
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                raise HelmError(f"flag needs an argument: {name}")
            options.setdefault({"-n": "--namespace", "-f": "--values"}.get(name, name), []).append(
                value
            )
        elif arg.startswith("-") and name in _BOOL_FLAGS:
            flags.add({"-i": "--install"}.get(name, name))
        elif arg.startswith("-"):
            raise HelmError(f"unknown flag: {name}")
        else:
            positional.append(arg)
        i += 1
    return positional, options, flags


async def _read_file(api: KubeClient, pod: Obj, path: str) -> str:
    container = pod["spec"]["containers"][0]
    ns = pod["metadata"]["namespace"]
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        root = mount["mountPath"].rstrip("/")
        if not path.startswith(root + "/"):
            continue
        relative = path[len(root) + 1 :]
        volume = volumes.get(mount["name"], {})
        source = volume.get("configMap") or volume.get("secret")
        if source is None:
            break
        kind = "ConfigMap" if "configMap" in volume else "Secret"
        name = source.get("name") or source.get("secretName")
        items = {i["path"]: i["key"] for i in source.get("items") or []}
        key = items.get(relative, relative if not items else None)
        plural = "configmaps" if kind == "ConfigMap" else "secrets"
        obj = await api.get_or_none(f"/api/v1/namespaces/{ns}/{plural}/{name}")
        if obj is None:
            break
        if kind == "ConfigMap" and key in (obj.get("data") or {}):
            return str(obj["data"][key])
        if kind == "Secret" and key in (obj.get("data") or {}):
            return base64.b64decode(obj["data"][key]).decode()
        break
    raise HelmError(f"open {path}: no such file or directory")


async def run_helm(
    resources: Resources,
    pod: Obj,
    args: list[str],
    faults: HelmFaults,
    now: str,
    helm: RealHelm | None = None,
) -> str:
    """Run one helm invocation; returns its stdout, raises HelmError with its error line.

    The chart reference and the faults are checked here; then ``helm`` runs the install when
    it has the chart's sources at that version, and ``_charts`` renders it when not."""
    api = resources.api
    positional, options, flags = _parse(args)
    if not positional or positional[0] not in ("upgrade", "install"):
        raise HelmError(f'unknown command "{positional[0] if positional else ""}" for "helm"')
    if positional[0] == "upgrade" and "--install" not in flags:
        flags.add("--no-install")
    if len(positional) != 3:
        raise HelmError(f'"helm {positional[0]}" requires 2 arguments')
    _, release, chart_name = positional
    repo = (options.get("--repo") or [""])[-1]
    version = (options.get("--version") or [""])[-1]
    namespace = (options.get("--namespace") or ["default"])[-1]
    texts = {path: await _read_file(api, pod, path) for path in options.get("--values", [])}
    chart = CATALOG.get(chart_name)
    if not repo:
        raise HelmError(f"repo {chart_name.split('/')[0]} not found")
    if not any(c.serves(repo) for c in CATALOG.values()):
        raise HelmError(
            f'looks like "{repo}" is not a valid chart repository or cannot be reached: failed '
            f"to fetch {repo.rstrip('/')}/index.yaml : 404 Not Found"
        )
    if chart is None or not chart.serves(repo):
        raise HelmError(f'chart "{chart_name}" not found in {repo} repository')
    if version and not _SEMVER.match(version):
        raise HelmError(f"improper constraint: {version}")
    if not version or (chart_name, version.lstrip("v")) in faults.unknown_versions:
        if version:
            raise HelmError(
                f'chart "{chart_name}" version "{version}" not found in {repo} repository'
            )
        version = chart.latest
    version = version.lstrip("v")
    if release in faults.failing_releases:
        raise HelmError(faults.failing_releases[release])
    if helm is not None and helm.has(chart_name, version):
        argv = [positional[0], release, str(helm.charts[(chart_name, version)])]
        argv += sorted(flags - {"--no-install"})
        for name, given in options.items():
            if name not in ("--repo", "--version", "--values"):
                argv += [item for value in given for item in (name, value)]
        run = await helm.run(api, pod, argv, list(texts.values()))
        if run.code:
            errors = [line for line in run.output.splitlines() if line.startswith("Error: ")]
            raise HelmError(errors[-1][7:] if errors else run.output.strip(), log=run.output)
        return run.output
    values: Obj = {}
    for path, text in texts.items():
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise HelmError(
                f"failed to parse {path}: error converting YAML to JSON: {exc}"
            ) from exc
        values = _deep_merge(values, loaded)
    if await api.get_or_none(f"/api/v1/namespaces/{namespace}") is None:
        if "--create-namespace" not in flags:
            raise HelmError(f'create: failed to create: namespaces "{namespace}" not found')
        await api.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
    revision = await _previous_revision(api, namespace, release)
    if revision == 0 and "--no-install" in flags:
        raise HelmError(f'"{release}" has no deployed releases')
    for obj in chart.render(version, values):
        await _install(resources, obj, release, namespace, f"{chart_name}-{version}")
    await _record_release(api, release, namespace, chart_name, version, revision + 1, values, now)
    head = (
        f'Release "{release}" has been upgraded. Happy Helming!'
        if revision
        else f'Release "{release}" does not exist. Installing it now.'
    )
    # helm prints time.ANSIC: "Mon Jan  2 15:04:05 2006".
    deployed = dt.datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ").strftime("%a %b %e %H:%M:%S %Y")
    return (
        f"{head}\nNAME: {release}\nLAST DEPLOYED: {deployed}\nNAMESPACE: {namespace}\n"
        f"STATUS: deployed\nREVISION: {revision + 1}\nTEST SUITE: None\n"
    )


def _deep_merge(base: Obj, extra: Obj) -> Obj:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


async def _install(
    resources: Resources, obj: Obj, release: str, namespace: str, chart: str
) -> None:
    """Create the object, or update it in place (helm's upgrade of an existing object)."""
    api = resources.api
    meta = obj["metadata"]
    meta.setdefault("labels", {}).update(
        {"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": chart}
    )
    meta.setdefault("annotations", {}).update(
        {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}
    )
    if await resources.namespaced(obj["apiVersion"], obj["kind"]):
        meta["namespace"] = namespace
    path = await resources.path(obj["apiVersion"], obj["kind"], namespace, meta["name"])
    existing = await api.get_or_none(path)
    if existing is None:
        try:
            await api.create(path.rpartition("/")[0], obj)
        except ApiError as exc:
            raise HelmError(_helm_api_error("create", obj, exc)) from exc
    else:
        # helm 3 updates an existing object with a patch (kube/client.go updateResource: a
        # three-way strategic merge patch), which carries no resourceVersion: a controller
        # writing the object's status meanwhile does not make it fail with a conflict.
        try:
            await api.patch(path, obj, kind="merge")
        except ApiError as exc:
            raise HelmError(_helm_api_error("update", obj, exc)) from exc


def _helm_api_error(verb: str, obj: Obj, exc: ApiError) -> str:
    # helm: 'failed to create resource: Deployment.apps "x" is invalid: ...' (the API's text).
    return f"failed to {verb} resource: {exc.message}"


async def _release_secrets(api: KubeClient, namespace: str, release: str) -> list[Obj]:
    listing = await api.get(
        f"/api/v1/namespaces/{namespace}/secrets", labelSelector=f"owner=helm,name={release}"
    )
    return list(listing.get("items") or [])


async def _previous_revision(api: KubeClient, namespace: str, release: str) -> int:
    secrets = await _release_secrets(api, namespace, release)
    return max((int(s["metadata"]["labels"].get("version", 0)) for s in secrets), default=0)


async def _record_release(
    api: KubeClient,
    release: str,
    namespace: str,
    chart: str,
    version: str,
    revision: int,
    values: Obj,
    now: str,
) -> None:
    """Helm 3's storage driver: one Secret per revision, older ones marked superseded (in the
    release they hold, which is what helm reads, and in their label, which it queries)."""
    secrets = f"/api/v1/namespaces/{namespace}/secrets"
    for old in await _release_secrets(api, namespace, release):
        if old["metadata"]["labels"].get("status") == "deployed":
            old["metadata"]["labels"]["status"] = "superseded"
            blob = base64.b64decode(base64.b64decode(old["data"]["release"]))
            stored = json.loads(gzip.decompress(blob))
            stored["info"]["status"] = "superseded"
            old["data"]["release"] = _encode_release(stored)
            await api.replace(f"{secrets}/{old['metadata']['name']}", old)
    payload = {
        "name": release,
        "namespace": namespace,
        "version": revision,
        "info": {"status": "deployed", "last_deployed": now},
        "chart": {"metadata": {"name": chart, "version": version}},
        "config": values,
    }
    await api.create(
        secrets,
        {
            "metadata": {
                "name": f"sh.helm.release.v1.{release}.v{revision}",
                "labels": {
                    "name": release,
                    "owner": "helm",
                    "status": "deployed",
                    "version": str(revision),
                },
            },
            "type": "helm.sh/release.v1",
            "data": {"release": _encode_release(payload)},
        },
    )


def _encode_release(release: Obj) -> str:
    """A Secret's data value of a release: helm's gzipped, base64-encoded JSON, base64-encoded
    again as all Secret data is (pkg/storage/driver/util.go encodeRelease)."""
    blob = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return base64.b64encode(blob).decode()


def release_name(args: list[str]) -> str | None:
    """The release a helm invocation acts on, for per-release faults."""
    try:
        positional, _, _ = _parse(args)
    except HelmError:
        return None
    return positional[1] if len(positional) >= 2 else None
