"""Volumes through the hcloud 2.27 client: the shapes, rules and protection of ``/volumes``.

Behaviour source: openapi.json tag Volumes; every response is checked against its schema by
the ``threaded`` fixture.
"""

from __future__ import annotations

import pytest
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType


def _server(client: Client, name: str, location: str = "fsn1") -> int:
    created = client.servers.create(
        name=name,
        server_type=ServerType(name="cx23"),
        image=Image(name="debian-12"),
        location=Location(name=location),
    )
    created.action.wait_until_finished()
    return int(created.server.id)


def _code(call: object) -> str:
    with pytest.raises(APIException) as info:
        call()  # type: ignore[operator]
    return str(info.value.code)


def test_list_filters_by_label_and_pages(client: Client) -> None:
    for n in range(30):
        labels = {"managed-by": "csi-driver", "pv-name": f"pvc-{n}"} if n % 2 else {}
        client.volumes.create(
            size=10, name=f"vol-{n}", location=Location(name="fsn1"), labels=labels
        )
    csi = client.volumes.get_all(label_selector="managed-by=csi-driver")
    assert sorted(v.name for v in csi) == sorted(f"vol-{n}" for n in range(1, 30, 2))
    assert len(client.volumes.get_all()) == 30
    page = client.volumes.get_list(page=2, per_page=25)
    assert len(page.volumes) == 5 and page.meta.pagination.total_entries == 30
    one = client.volumes.get_by_name("vol-7")
    assert one is not None
    assert one.labels == {"managed-by": "csi-driver", "pv-name": "pvc-7"}
    assert one.location.name == "fsn1" and one.size == 10 and one.server is None
    assert _code(lambda: client.volumes.get_all(label_selector="a=b=c")) == "invalid_input"


def test_create_with_server_attaches_and_delete_needs_detach(client: Client) -> None:
    sid = _server(client, "db-1", "nbg1")
    created = client.volumes.create(
        size=20, name="data", server=client.servers.get_by_id(sid), automount=False, format="ext4"
    )
    created.action.wait_until_finished()
    assert [a.command for a in created.next_actions] == ["attach_volume"]
    volume = client.volumes.get_by_id(created.volume.id)
    assert volume.location.name == "nbg1" and volume.server is not None
    assert volume.server.id == sid and volume.status == "available" and volume.format == "ext4"
    assert client.servers.get_by_id(sid).volumes[0].id == volume.id
    # "The Volume must not be attached to a Server" (DELETE /volumes/{id}).
    assert _code(volume.delete) == "service_error"
    volume.detach().wait_until_finished()
    assert client.volumes.get_by_id(volume.id).server is None
    assert volume.delete() is True
    assert _code(lambda: client.volumes.get_by_id(volume.id)) == "not_found"


def test_deleting_the_server_detaches_its_volume(client: Client) -> None:
    sid = _server(client, "web-1")
    volume = client.volumes.create(size=10, name="logs", location=Location(name="fsn1")).volume
    volume.attach(client.servers.get_by_id(sid)).wait_until_finished()
    client.servers.get_by_id(sid).delete().wait_until_finished()
    assert client.volumes.get_by_id(volume.id).server is None


def test_delete_protection(client: Client) -> None:
    volume = client.volumes.create(size=10, name="keep", location=Location(name="fsn1")).volume
    volume.change_protection(delete=True).wait_until_finished()
    assert client.volumes.get_by_id(volume.id).protection == {"delete": True}
    assert _code(volume.delete) == "protected"
    volume.change_protection(delete=False).wait_until_finished()
    assert [a.command for a in volume.get_actions()] == [
        "create_volume",
        "change_protection",
        "change_protection",
    ]
    assert volume.delete() is True


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 5, "name": "tiny"}, "size"),
        ({"size": 10, "name": "-bad"}, "name"),
        ({"size": 10, "name": "nowhere", "location": "mars1"}, "location"),
        ({"size": 10, "name": "fmt", "format": "btrfs"}, "format"),
    ],
)
def test_invalid_input(client: Client, kwargs: dict[str, object], field: str) -> None:
    # Raw requests: hcloud 2.27 checks some of these itself before sending.
    body = {"location": "fsn1", **kwargs}
    with pytest.raises(APIException) as info:
        client.request("POST", "/volumes", json=body)
    assert info.value.code == "invalid_input"
    assert field in str(info.value.message)


def test_names_are_unique(client: Client) -> None:
    client.volumes.create(size=10, name="same", location=Location(name="fsn1"))
    assert (
        _code(lambda: client.volumes.create(size=10, name="same", location=Location(name="fsn1")))
        == "uniqueness_error"
    )
