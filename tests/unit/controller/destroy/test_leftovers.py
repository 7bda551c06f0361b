"""Build leftovers go with their cluster; an API that ignores filters deletes nothing foreign.

A build killed mid-way leaves its server and SSH key (labelled ``hk8s/build-for=<cluster>``);
``destroy`` removes them with the cluster. And since a destroy or prune must never act on the
API's word alone, each resource's own labels are checked again, and plans describe the labels
actually read.
"""

from __future__ import annotations

from typing import Any

from hk8s.controller import ImageBuilds
from hk8s.controller.image._spec import build_labels
from hk8s.model import ManualClock, Timing
from hk8s.model.resources import Image, Network, Server, SSHKey
from hk8s.providers.hcloud.fake import FakeHcloud

from .conftest import add_cluster, destroyer  # type: ignore[import-not-found]


class FilterIgnoringHcloud(FakeHcloud):
    """An API (or proxy) that answers list calls without applying label or type filters."""

    @staticmethod
    def _select(store: dict[int, Any], selector: str | None, name: str | None) -> list[Any]:
        return [r for r in store.values() if name is None or r.name == name]

    async def list_images(self, selector: str | None = None, **_: Any) -> list[Image]:
        self._call("list_images", selector)
        return list(self.images.values())


def _build_leftovers(fake: FakeHcloud, cluster: str, build_id: str, base: int) -> None:
    labels = build_labels(build_id, "amd64", 0.0, cluster)
    name = f"hk8s-build-amd64-{build_id}"
    fake.servers[base] = Server(base, name, "running", "cx22", "fsn1", labels)
    fake.ssh_keys[base + 1] = SSHKey(base + 1, name, "fp", "ssh-ed25519 AAAA", labels)


async def test_destroy_removes_its_clusters_build_leftovers_of_any_age() -> None:
    fake = FakeHcloud()
    add_cluster(fake, "demo")
    add_cluster(fake, "prod", servers=1)
    _build_leftovers(fake, "demo", "aaaa1111", 9000)
    _build_leftovers(fake, "prod", "bbbb2222", 9100)
    d = destroyer(fake)
    plan = await d.plan()
    reasons = {op.key: op.reason for op in plan.plan.operations}
    server = reasons["server/hk8s-build-amd64-aaaa1111"]
    assert "image build server left by an interrupted build" in server
    assert "hk8s/build-for=demo" in server
    assert "hk8s/build-for=demo" in reasons["ssh-key/hk8s-build-amd64-aaaa1111"]
    assert not [key for key in reasons if "bbbb2222" in key]
    await d.run(plan)
    assert [s.name for s in fake.servers.values() if "build" in s.name] == [
        "hk8s-build-amd64-bbbb2222"
    ]
    assert [k.name for k in fake.ssh_keys.values() if "build" in k.name] == [
        "hk8s-build-amd64-bbbb2222"
    ]


async def test_an_api_ignoring_label_filters_makes_destroy_touch_nothing_foreign() -> None:
    fake = FilterIgnoringHcloud()
    add_cluster(fake, "demo")
    add_cluster(fake, "prod", servers=2)
    fake.networks[9500] = Network(9500, "legacy", "10.9.0.0/16", {})
    d = destroyer(fake)
    plan = await d.plan()
    for op in plan.plan.operations:
        assert "prod" not in op.name and op.name != "legacy", op
        assert "labelled cluster=demo,managed-by=hk8s" in op.reason, op
    assert any("its labels say otherwise" in note for note in plan.notes)
    await d.run(plan)
    assert sorted(s.name for s in fake.servers.values()) == ["prod-cp-1", "prod-cp-2"]
    assert "legacy" in {n.name for n in fake.networks.values()}


async def test_prune_never_deletes_what_the_filter_should_have_excluded() -> None:
    fake = FilterIgnoringHcloud()
    fake.images[1] = Image(1, "ubuntu-24.04", "system", "available", "x86", "Ubuntu 24.04", {})
    fake.images[2] = Image(2, None, "snapshot", "available", "x86", "someone's backup", {})
    talos = {"os": "talos", "managed-by": "hk8s", "talos-version": "v1.11.0", "schematic": "x"}
    fake.images[3] = Image(3, None, "snapshot", "available", "x86", "Talos v1.11.0", talos)
    builds = ImageBuilds(fake, clock=ManualClock(), timing=Timing())
    unused, _busy = await builds.unreferenced([])
    assert [i.id for i in unused] == [3]
    await builds.delete(unused)
    assert sorted(fake.images) == [1, 2]


async def test_every_build_entry_point_sweeps_stale_leftovers() -> None:
    fake = FakeHcloud()
    _build_leftovers(fake, "demo", "cccc3333", 9200)  # created at 0: hours ago for wall=1e9
    builds = ImageBuilds(fake, clock=ManualClock(), timing=Timing(), wall=lambda: 1e9)
    removed = await builds.sweep_leftovers()
    assert removed == ["hk8s-build-amd64-cccc3333", "hk8s-build-amd64-cccc3333"]
    assert not fake.servers and not fake.ssh_keys
