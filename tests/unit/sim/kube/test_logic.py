"""The pure parts of the simulated API server: selectors, patches, managed fields."""

from __future__ import annotations

import pytest

from hk8s.sim.kube import KubeError
from hk8s.sim.kube._fields import apply, path_string, track_update
from hk8s.sim.kube._patch import json_patch, merge_patch, strategic_merge_patch
from hk8s.sim.kube._selectors import parse_field_selector, parse_label_selector


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("app in (web, db),tier", {"app": "db", "tier": "1"}, True),
        ("app notin (web)", {"app": "web"}, False),
        (
            "!node-role.kubernetes.io/control-plane",
            {"node-role.kubernetes.io/control-plane": ""},
            False,
        ),
        (
            "node-role.kubernetes.io/control-plane",
            {"node-role.kubernetes.io/control-plane": ""},
            True,
        ),
        ("", {"x": "y"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector)(labels) is expected


def test_bad_selectors_are_400() -> None:
    with pytest.raises(KubeError) as caught:
        parse_label_selector("app in web")
    assert caught.value.code == 400
    with pytest.raises(KubeError) as caught:
        parse_field_selector("spec.foo=1", "Pod")
    assert caught.value.message == "field label not supported: spec.foo"


def test_field_selectors_use_zero_values() -> None:
    node = {"metadata": {"name": "n"}, "spec": {}}
    assert parse_field_selector("spec.unschedulable=false", "Node")(node)
    assert not parse_field_selector("spec.unschedulable=true", "Node")(node)
    pod = {"metadata": {"name": "p", "namespace": "x"}, "spec": {"nodeName": "n1"}}
    assert parse_field_selector("spec.nodeName=n1,metadata.namespace!=y", "Pod")(pod)


def test_merge_patch_rfc7386() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(target, {"a": {"b": None, "d": 3}, "l": [3]}) == {
        "a": {"c": 2, "d": 3},
        "l": [3],
    }


def test_strategic_merge_patch_merges_containers_by_name() -> None:
    target = {
        "spec": {
            "containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}],
            "tolerations": [{"operator": "Exists"}],
        }
    }
    patched = strategic_merge_patch(
        target,
        {
            "spec": {
                "containers": [{"name": "b", "image": "y:2"}, {"name": "a", "$patch": "delete"}],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            }
        },
    )
    assert patched["spec"]["containers"] == [{"name": "b", "image": "y:2"}]
    # No patchMergeKey on tolerations: the list is replaced.
    assert patched["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    finalizers = strategic_merge_patch(
        {"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": ["b", "a"]}}
    )
    assert finalizers["metadata"]["finalizers"] == ["a", "b"]


def test_json_patch_and_its_errors() -> None:
    doc = {"spec": {"taints": [{"key": "a"}, {"key": "b"}]}}
    assert json_patch(doc, [{"op": "remove", "path": "/spec/taints/0"}]) == {
        "spec": {"taints": [{"key": "b"}]}
    }
    with pytest.raises(KubeError) as caught:
        json_patch(doc, [{"op": "test", "path": "/spec/taints/0/key", "value": "z"}])
    assert caught.value.code == 422


def test_apply_tracks_keyed_list_items_and_reports_their_paths() -> None:
    first = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
    }
    live = apply(
        None, first, manager="a", force=False, api_version="apps/v1", now="t", has_status=True
    )
    fields = live["metadata"]["managedFields"][0]["fieldsV1"]
    item = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert item == {".": {}, "f:image": {}, "f:name": {}}
    second = {
        **first,
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:2"}]}}},
    }
    with pytest.raises(KubeError) as caught:
        apply(
            live, second, manager="b", force=False, api_version="apps/v1", now="t", has_status=True
        )
    assert caught.value.details is not None
    assert caught.value.details["causes"][0]["field"] == (
        '.spec.template.spec.containers[name="c"].image'
    )


def test_update_takes_ownership_of_changed_fields_only() -> None:
    old = apply(
        None,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "x"},
            "data": {"a": "1", "b": "2"},
        },
        manager="hk8s",
        force=False,
        api_version="v1",
        now="t",
        has_status=False,
    )
    new = {**old, "data": {"a": "1", "b": "3"}}
    track_update(old, new, manager="kubectl", api_version="v1", now="t2")
    owners = {e["manager"]: e["fieldsV1"] for e in new["metadata"]["managedFields"]}
    assert owners == {"hk8s": {"f:data": {"f:a": {}}}, "kubectl": {"f:data": {"f:b": {}}}}
    assert path_string((("f", "metadata"), ("f", "labels"), ("f", "app"))) == ".metadata.labels.app"
