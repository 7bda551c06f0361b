"""hk8s' own Kubernetes objects, rendered from the templates in ``manifests/``.

The templates are plain YAML with ``${name}`` placeholders (``string.Template``); every value
is substituted as a JSON string, which is also a valid YAML double-quoted scalar, so no value
can break the YAML around it or inject keys. The result is parsed back into plain dicts ready
for ``KubeClient.apply``.

The Hetzner token is only ever placed in the ``hcloud`` Secret, as a ``RedactedStr``: it is sent
to the API as it is, but its ``repr`` (what logs, tracebacks and ``print(objects)`` show) is
``'<redacted>'``.

>>> objects = render_base_manifests(cluster, token=token, network_id=42)  # Secret + helm RBAC
>>> addon = render_addon_manifests(cluster, "cilium")                      # ConfigMap + Job
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.config import ADDON_CHARTS
from hk8s.errors import NotFoundError, UsageError
from hk8s.providers.k8s._addons import HELM_IMAGE, Workload, addon_values, addon_workloads

if TYPE_CHECKING:
    from hk8s.config import ClusterConfig

__all__ = [
    "AddonManifests",
    "RedactedStr",
    "load_template",
    "manifests_dir",
    "render_addon_manifests",
    "render_base_manifests",
]

HELM_SERVICE_ACCOUNT = "hk8s-helm"
ADDON_NAMESPACE = "kube-system"


class RedactedStr(str):
    """A secret string: its value for the wire, ``'<redacted>'`` for everything that prints."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"


def manifests_dir() -> Path:
    """The templates: ``hk8s/_data/manifests`` in a wheel, the repo's ``manifests/`` otherwise.

    pyproject force-includes ``manifests`` as ``hk8s/_data/manifests`` in the wheel; an
    editable install runs from the source tree, where they sit at the repository root.
    """
    packaged = Path(str(resources.files("hk8s"))) / "_data" / "manifests"
    if packaged.is_dir():
        return packaged
    source_tree = Path(__file__).resolve().parents[4] / "manifests"
    if source_tree.is_dir():
        return source_tree
    raise NotFoundError(
        "hk8s' manifest templates are missing from this installation",
        hint="reinstall hk8s; the wheel ships them under hk8s/_data/manifests",
    )


def load_template(name: str) -> string.Template:
    path = manifests_dir() / name
    try:
        return string.Template(path.read_text())
    except FileNotFoundError as exc:
        raise NotFoundError(f"manifest template {name} not found", path=str(path)) from exc


# libyaml's parser, where PyYAML has it: a create parses some 40 templates, 0.36 s in the
# pure-Python one.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _render(name: str, **values: object) -> list[dict[str, Any]]:
    """Fill template ``name`` (each value JSON-quoted) and parse its YAML documents."""
    quoted = {key: json.dumps(str(value)) for key, value in values.items()}
    text = load_template(name).substitute(quoted)
    return [doc for doc in yaml.load_all(text, Loader=_LOADER) if doc]


def render_base_manifests(
    cluster: ClusterConfig, *, token: str, network_id: int
) -> list[dict[str, Any]]:
    """The ``hcloud`` Secret (token + network id) and the helm installer's RBAC, in order."""
    if not token:
        raise UsageError("the Hetzner token is empty", hint="set HCLOUD_TOKEN")
    [secret] = _render("hcloud-secret.yaml", cluster=cluster.name, token="", network=network_id)
    secret["stringData"]["token"] = RedactedStr(token)
    return [secret, *_render("helm-rbac.yaml", cluster=cluster.name)]


@dataclass(frozen=True)
class AddonManifests:
    """One addon's install: its objects to apply, the Job to wait for, then its workloads."""

    addon: str
    release: str
    chart: str
    repo: str
    version: str
    namespace: str
    values: dict[str, Any]
    job_namespace: str
    job_name: str
    objects: tuple[dict[str, Any], ...]
    workloads: tuple[Workload, ...]


def render_addon_manifests(
    cluster: ClusterConfig, addon: str, *, helm_image: str = HELM_IMAGE
) -> AddonManifests:
    """The values ConfigMap and helm Job for ``addon`` (a key of ``ADDON_CHARTS``)."""
    if addon not in ADDON_CHARTS:
        raise UsageError(f"unknown addon {addon!r}", hint=f"one of {', '.join(ADDON_CHARTS)}")
    chart = ADDON_CHARTS[addon]
    version = cluster.addons.configured()[addon].version
    values = addon_values(cluster, addon)
    values_yaml = yaml.safe_dump(values, sort_keys=True, default_flow_style=False)
    identity = [chart.release, chart.chart, chart.repo, version, chart.namespace, values_yaml]
    checksum = hashlib.sha256(json.dumps([*identity, helm_image]).encode()).hexdigest()
    job_name = f"hk8s-{chart.release}-{checksum[:8]}"
    values_name = f"hk8s-{chart.release}-values"
    common = {"cluster": cluster.name, "release": chart.release, "values_name": values_name}
    [configmap] = _render("addon-values.yaml", values_yaml=values_yaml, **common)
    [job] = _render(
        "addon-job.yaml",
        job_name=job_name,
        checksum=checksum,
        chart=chart.chart,
        repo=chart.repo,
        version=version,
        target_namespace=chart.namespace,
        helm_image=helm_image,
        **common,
    )
    return AddonManifests(
        addon=addon,
        release=chart.release,
        chart=chart.chart,
        repo=chart.repo,
        version=version,
        namespace=chart.namespace,
        values=values,
        job_namespace=ADDON_NAMESPACE,
        job_name=job_name,
        objects=(configmap, job),
        workloads=addon_workloads(addon, values),
    )
