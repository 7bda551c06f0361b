"""Wire behaviour shared by all endpoints: auth, rate limit, errors, lists, faults, stats.

Each test names the section of docs.hetzner.cloud (also openapi.json ``info.description``)
that documents the behaviour it checks.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
import requests
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.networks import NetworkRoute
from hcloud.server_types import ServerType

from hk8s.errors import ConfigError
from hk8s.sim.hcloud import ActionFault, ErrorFault, FaultSpec, HcloudSim, ThreadedSim

from .conftest import SPEED, ResponseChecker, openapi


def call(
    sim: HcloudSim, method: str, path: str, *, token: str | None = None, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or sim.token}"}
    return requests.request(method, sim.endpoint + path, headers=headers, timeout=5, **kwargs)


def make_keys(client: Client, count: int) -> None:
    for i in range(count):
        client.placement_groups.create(
            name=f"g-{i:02d}",
            type="spread",
            labels={"n": str(i), "parity": "odd" if i % 2 else "even"},
        )


def test_missing_or_wrong_token_is_401_unauthorized(sim: HcloudSim) -> None:
    # Errors table: 401 unauthorized "Request was made with an invalid or unknown token".
    response = call(sim, "GET", "/servers", token="wrong")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    # Rate limiting applies to unauthenticated requests too ("Rate Limiting").
    assert "RateLimit-Remaining" in response.headers


def test_rate_limit_headers_and_429() -> None:
    # "Rate Limiting": RateLimit-Limit/-Remaining/-Reset on every response, 3600 per hour,
    # +1 per second, 429 rate_limit_exceeded when exhausted.
    with ThreadedSim(speed=1.0) as sim:
        first = call(sim, "GET", "/locations")
        assert first.headers["RateLimit-Limit"] == "3600"
        assert first.headers["RateLimit-Remaining"] == "3599"
        assert int(first.headers["RateLimit-Reset"]) >= int(time.time())
        requests.post(
            sim.endpoint.removesuffix("/v1") + "/_sim/rate-limit", json={"remaining": 2}, timeout=5
        )
        statuses = [call(sim, "GET", "/locations").status_code for _ in range(4)]
        assert statuses[:2] == [200, 200] and 429 in statuses[2:]
        limited = call(sim, "GET", "/locations")
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        assert limited.headers["RateLimit-Remaining"] == "0"
        # The bucket is full again ~3600 s from now (one request per second).
        assert int(limited.headers["RateLimit-Reset"]) - time.time() > 3500
        assert sim.stats.rate_limited >= 2
        assert sim.stats.by_error["rate_limit_exceeded"] == sim.stats.rate_limited


def test_bucket_refills_one_request_per_second_of_sim_time() -> None:
    with ThreadedSim(speed=1000.0, rate_limit=5) as sim:
        for _ in range(5):
            call(sim, "GET", "/locations")
        # 5 requests in, and at 1000x each wall millisecond refills one request.
        deadline = time.monotonic() + 2
        while call(sim, "GET", "/locations").status_code == 429:
            assert time.monotonic() < deadline


def test_error_envelope_and_invalid_input_details(client: Client, sim: HcloudSim) -> None:
    # "Errors": {"error": {"code", "message", "details"}}; invalid_input has details.fields.
    response = call(sim, "POST", "/ssh_keys", json={"name": "k"})
    body = response.json()
    assert response.status_code == 422
    assert body["error"]["code"] == "invalid_input"
    assert body["error"]["details"]["fields"][0]["name"] == "public_key"
    bad_labels = call(
        sim,
        "POST",
        "/networks",
        json={"name": "n", "ip_range": "10.0.0.0/16", "labels": {"-bad": "x"}},
    )
    assert bad_labels.json()["error"]["details"]["fields"][0]["name"] == "labels"
    assert call(sim, "GET", "/servers/999999").json()["error"]["code"] == "not_found"
    unknown = call(sim, "POST", "/servers/1/actions/no_such_action")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    assert call(sim, "DELETE", "/locations").json()["error"]["code"] == "method_not_allowed"
    broken = call(sim, "POST", "/networks", data=b"{nope")
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "json_error"


def test_name_and_fingerprint_uniqueness(client: Client) -> None:
    # 409 uniqueness_error; the reference's own example is the duplicate SSH key fingerprint.
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbV0bN6m3CwZYGvDNYbp0Yy5PhfpQpBTyGFvCxfpD0G a"
    client.ssh_keys.create(name="one", public_key=key)
    with pytest.raises(APIException) as info:
        client.ssh_keys.create(name="two", public_key=key)
    assert info.value.code == "uniqueness_error"
    assert info.value.details == {"fields": [{"name": "public_key"}]}
    with pytest.raises(APIException) as info:
        client.ssh_keys.create(name="one", public_key=key.replace("G a", "H b"))
    assert info.value.code == "uniqueness_error"
    client.networks.create(name="net", ip_range="10.0.0.0/16")
    with pytest.raises(APIException) as info:
        client.networks.create(name="net", ip_range="10.1.0.0/16")
    assert info.value.code == "uniqueness_error"


def test_pagination_meta_and_per_page_cap(client: Client, sim: HcloudSim) -> None:
    # "Pagination": page from 1, per_page default 25 and max 50, meta.pagination, Link header.
    make_keys(client, 60)
    first = call(sim, "GET", "/placement_groups").json()
    assert len(first["placement_groups"]) == 25
    assert first["meta"]["pagination"] == {
        "page": 1,
        "per_page": 25,
        "previous_page": None,
        "next_page": 2,
        "last_page": 3,
        "total_entries": 60,
    }
    last = call(sim, "GET", "/placement_groups", params={"page": 2, "per_page": 50})
    assert len(last.json()["placement_groups"]) == 10
    assert last.json()["meta"]["pagination"]["next_page"] is None
    assert last.headers["Link"] == (
        f'<{sim.endpoint}/placement_groups?page=1&per_page=50>; rel="prev", '
        f'<{sim.endpoint}/placement_groups?page=2&per_page=50>; rel="last"'
    )
    # The links keep the filters: following "next" pages through the same filtered list.
    filtered = call(
        sim, "GET", "/placement_groups", params={"label_selector": "n", "sort": "id:desc"}
    )
    assert filtered.headers["Link"].startswith(
        f"<{sim.endpoint}/placement_groups?label_selector=n&sort=id%3Adesc&page=2&per_page=25>"
    )
    capped = call(sim, "GET", "/placement_groups", params={"per_page": 100}).json()
    assert capped["meta"]["pagination"]["per_page"] == 50
    # hcloud's get_all walks the pages (per_page=50).
    assert len(client.placement_groups.get_all()) == 60


def test_id_or_name_fields_take_an_integer_or_a_string(sim: HcloudSim) -> None:
    # openapi.json: location, datacenter, server_type, image, load_balancer_type are
    # "ID or name" (location, datacenter: oneOf string / integer; the others a string).
    locations = call(sim, "GET", "/locations").json()["locations"]
    fsn1 = next(loc for loc in locations if loc["name"] == "fsn1")
    server_types = call(sim, "GET", "/server_types").json()["server_types"]
    cx = next(t for t in server_types if t["name"] == "cx23")  # sold in fsn1 today
    body = {"name": "by-id", "server_type": str(cx["id"]), "image": "debian-12",
            "location": fsn1["id"], "start_after_create": False}  # fmt: skip
    created = call(sim, "POST", "/servers", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["server"]["datacenter"]["location"]["name"] == "fsn1"
    lb = {"name": "lb", "load_balancer_type": "lb11", "location": str(fsn1["id"])}
    assert call(sim, "POST", "/load_balancers", json=lb).status_code == 201
    bad = call(sim, "POST", "/load_balancers", json={**lb, "name": "x", "location": True})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_input")


def test_label_selector_name_and_sort_filters(client: Client, sim: HcloudSim) -> None:
    # "Label Selector" and the name/sort query parameters of the list operations.
    make_keys(client, 6)
    groups = client.placement_groups.get_all(label_selector="parity=odd,n notin (5)")
    assert sorted(g.name for g in groups) == ["g-01", "g-03"]
    assert len(client.placement_groups.get_all(label_selector="!missing,n in (0,1,2)")) == 3
    assert [g.name for g in client.placement_groups.get_all(name="g-04")] == ["g-04"]
    names = [g.name for g in client.placement_groups.get_all(sort=["name:desc"])]
    assert names == sorted(names, reverse=True)
    bad = call(sim, "GET", "/placement_groups", params={"label_selector": "a in (b"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
    assert call(sim, "GET", "/servers", params={"sort": "bogus"}).status_code == 422


def test_image_status_filter_quirk_of_hcloud_2_27(client: Client) -> None:
    # hcloud-python 2.27 images/client.py sends params["status"] = per_page; the API validates
    # the status enum (openapi.json /images), so the filter fails and callers must filter
    # client side. Filtering by a real status works.
    with pytest.raises(APIException) as info:
        client.images.get_all(status=["available"])
    assert info.value.code == "invalid_input"
    images = client.images.get_all(type=["system"], architecture=["arm"])
    assert {i.name for i in images} == {"debian-12", "ubuntu-24.04"}


def test_batch_action_polling(client: Client, sim: HcloudSim) -> None:
    # GET /actions?id=..&id=.. (the list-all form was removed 2025-01-30).
    first = client.networks.create(name="n1", ip_range="10.0.0.0/16")
    second = client.networks.create(name="n2", ip_range="10.1.0.0/16")
    route = NetworkRoute(destination="10.100.1.0/24", gateway="10.0.1.1")
    ids = [first.add_route(route).id, second.change_protection(delete=True).id]
    found = call(sim, "GET", "/actions", params={"id": ids}).json()["actions"]
    assert sorted(a["id"] for a in found) == sorted(ids)
    assert {a["command"] for a in found} == {"add_route", "change_protection"}
    assert call(sim, "GET", "/actions").status_code == 422


def test_parallel_change_on_a_network_is_a_conflict(
    client: Client, sim: HcloudSim, threaded: ThreadedSim
) -> None:
    # add_subnet & co: "If a change is currently being performed on this Network, a error
    # response with code conflict will be returned." (hcloud itself would retry, so use HTTP.)
    # A change that lasts (simulated minutes): a loaded machine must not finish it between
    # the two requests.
    slow = dataclasses.replace(sim.state.durations, short=600.0)
    threaded.call(lambda: setattr(sim.state, "durations", slow))
    network = client.networks.create(name="busy", ip_range="10.0.0.0/16")
    subnet = {"type": "cloud", "network_zone": "eu-central"}
    assert call(sim, "POST", f"/networks/{network.id}/actions/add_subnet", json=subnet).ok
    again = call(sim, "POST", f"/networks/{network.id}/actions/add_subnet", json=subnet)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "conflict")


def test_injected_http_errors_are_seeded_and_counted(sim: HcloudSim, threaded: ThreadedSim) -> None:
    spec = FaultSpec(
        seed=3, errors=[ErrorFault(method="GET", path="/locations", rate=0.5, code=503)]
    )

    def run() -> list[int]:
        threaded.call(lambda: sim.set_faults(spec))
        return [call(sim, "GET", "/locations").status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second  # same seed, same outcome
    assert 503 in first and 200 in first
    assert call(sim, "GET", "/server_types").status_code == 200  # other endpoints untouched
    assert sim.stats.by_status[503] == first.count(503) * 2


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("locked", 423, "locked"),
        ("conflict", 409, "conflict"),
        (429, 429, "rate_limit_exceeded"),
        (500, 500, "server_error"),
    ],
)
def test_injected_error_codes(
    sim: HcloudSim, threaded: ThreadedSim, code: Any, status: int, error: str
) -> None:
    spec = FaultSpec(errors=[ErrorFault(path="/servers/{id}/actions/*", code=code, limit=1)])
    threaded.call(lambda: sim.set_faults(spec))
    response = call(sim, "POST", "/servers/1/actions/poweron")
    assert (response.status_code, response.json()["error"]["code"]) == (status, error)
    assert call(sim, "POST", "/servers/1/actions/poweron").status_code == 404  # limit reached


def test_failing_actions_and_never_running_servers(
    client: Client, sim: HcloudSim, threaded: ThreadedSim
) -> None:
    spec = FaultSpec(actions=[ActionFault(command="create_image")], never_running=["*-stuck"])
    threaded.call(lambda: sim.set_faults(spec))
    stuck = client.servers.create(
        name="w-stuck", server_type=ServerType(name="cx23"), image=Image(name="debian-12")
    )
    ok = client.servers.create(
        name="w-ok", server_type=ServerType(name="cx23"), image=Image(name="debian-12")
    )
    for action in [ok.action, *ok.next_actions, stuck.action]:
        action.wait_until_finished()
    snapshot = client.servers.get_by_id(ok.server.id).create_image()
    with pytest.raises(Exception, match="action failed"):
        snapshot.action.wait_until_finished()
    assert client.actions.get_by_id(snapshot.action.id).status == "error"
    server = client.servers.get_by_id(stuck.server.id)
    assert server.status == "starting"
    assert client.actions.get_by_id(stuck.next_actions[0].id).status == "running"
    # Clearing the fault unsticks it (as Hetzner's support would): a re-run can finish.
    threaded.call(lambda: sim.set_faults(FaultSpec()))
    stuck.next_actions[0].wait_until_finished()
    assert client.servers.get_by_id(stuck.server.id).status == "running"


def test_latency_faults_slow_responses_in_sim_time() -> None:
    spec = FaultSpec(latency=[{"path": "/locations", "distribution": "fixed", "min": 0.3}])  # type: ignore[list-item]
    with ThreadedSim(speed=1.0, faults=spec) as sim:
        started = time.monotonic()
        call(sim, "GET", "/locations")
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        call(sim, "GET", "/server_types")
        assert time.monotonic() - started < 0.3


def test_stats_over_http_and_in_process(client: Client, sim: HcloudSim) -> None:
    base = sim.endpoint.removesuffix("/v1")
    client.locations.get_all()
    client.placement_groups.create(name="g", type="spread")
    stats = requests.get(f"{base}/_sim/stats", timeout=5).json()
    assert stats["by_route"]["GET /locations"] == 1
    assert stats["by_route"]["POST /placement_groups"] == 1
    assert stats["mutating"] == 1 and stats["reads"] == 1
    assert sim.stats.count("GET", "/locations") == 1
    requests.post(f"{base}/_sim/reset-stats", timeout=5)
    assert sim.stats.total == 0
    faults = requests.post(
        f"{base}/_sim/faults", json={"seed": 9, "never_running": ["x"]}, timeout=5
    )
    assert faults.json()["never_running"] == ["x"]
    bad = requests.post(f"{base}/_sim/faults", json={"errors": [{"rate": 7}]}, timeout=5)
    assert bad.status_code == 422


def test_stats_tell_each_client_by_its_user_agent(client: Client, sim: HcloudSim) -> None:
    # The addons' cloud side uses the cluster's token too; benchmarks and the request budget
    # count hk8s' own requests by the User-Agent's first product.
    ccm = Client(
        token=sim.token,
        api_endpoint=sim.endpoint,
        application_name="hcloud-cloud-controller-manager",
        application_version="1.30.1",
    )
    ccm.servers.get_all()
    ccm.servers.get_all()
    hk8s = Client(
        token=sim.token, api_endpoint=sim.endpoint, application_name="hk8s", application_version="1"
    )
    hk8s.locations.get_all()
    client.server_types.get_all()  # hcloud-python's own User-Agent
    assert sim.stats.routes_of("hk8s") == {"GET /locations": 1}
    assert sim.stats.routes_of("hcloud-cloud-controller-manager") == {"GET /servers": 2}
    assert sim.stats.routes_of("hcloud-python") == {"GET /server_types": 1}


def test_every_response_was_checked_against_openapi(
    client: Client, checker: ResponseChecker
) -> None:
    client.server_types.get_all()
    client.locations.get_by_name("fsn1")
    assert checker.checked == 2 and checker.problems == []


def test_openapi_check_catches_a_wrong_body() -> None:
    spec = openapi()
    good = (
        b'{"placement_group": {"id": 1, "name": "a", "labels": {}, "type": "spread",'
        b' "created": "2024-01-01T00:00:00+00:00", "servers": []}}'
    )
    assert spec.problems("GET", "/placement_groups/1", 200, good) == []
    missing = b'{"placement_group": {"id": 1, "name": "a", "labels": {}, "type": "spread"}}'
    assert any("created" in p for p in spec.problems("GET", "/placement_groups/1", 200, missing))
    assert spec.problems("DELETE", "/ssh_keys/1", 204, b"") == []
    assert spec.problems("DELETE", "/ssh_keys/1", 204, b"{}") != []
    assert SPEED > 1


def test_project_limits_answer_resource_limit_exceeded(
    client: Client, sim: HcloudSim, threaded: ThreadedSim
) -> None:
    # Errors table: 403 resource_limit_exceeded, details.limits [{"name": "project_limit"}].
    threaded.call(lambda: sim.set_faults(FaultSpec.parse({"limits": {"placement_groups": 1}})))
    client.placement_groups.create(name="only", type="spread")
    response = call(sim, "POST", "/placement_groups", json={"name": "two", "type": "spread"})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "resource_limit_exceeded"
    assert error["details"] == {"limits": [{"name": "project_limit"}]}
    with pytest.raises(ConfigError):
        FaultSpec.parse({"limits": {"volumes": 1}})


def test_injected_placement_error_on_server_create(
    client: Client, sim: HcloudSim, threaded: ThreadedSim
) -> None:
    spec = FaultSpec(errors=[ErrorFault(method="POST", path="/servers", code="placement_error")])
    threaded.call(lambda: sim.set_faults(spec))
    with pytest.raises(APIException) as info:
        client.servers.create(
            name="p", server_type=ServerType(name="cx23"), image=Image(name="debian-12")
        )
    assert info.value.code == "placement_error"
    assert client.servers.get_all() == []


def test_malformed_ids_are_invalid_input_not_server_errors(sim: HcloudSim) -> None:
    body = {"name": "x", "server_type": "cx23", "image": "debian-12", "networks": ["abc"]}
    response = call(sim, "POST", "/servers", json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_input")
    lb = {"name": "lb", "load_balancer_type": "lb11", "location": "fsn1", "network": "x"}
    assert call(sim, "POST", "/load_balancers", json=lb).status_code == 422


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        # Each case was a server error or a response breaking openapi.json before validation
        # was added (found by fuzzing the simulator's inputs).
        ("/servers", {"name": "s", "server_type": "cx23", "image": "debian-12",
                      "location": {"x": 1}}, "location"),
        ("/firewalls", {"name": "f", "rules": [{"direction": "in", "protocol": "tcp",
                        "port": "80", "source_ips": 5}]}, "rules[0].source_ips"),
        ("/firewalls", {"name": "f", "rules": [{"direction": "in", "protocol": "tcp",
                        "port": "80", "source_ips": ["0.0.0.0/0"], "description": []}]},
         "rules[0].description"),
        ("/load_balancers", {"name": "l", "load_balancer_type": "lb11", "location": "fsn1",
                             "services": [{"protocol": "tcp", "listen_port": 80,
                                           "health_check": {"interval": -1}}]},
         "health_check.interval"),
        ("/load_balancers", {"name": "l", "load_balancer_type": "lb11", "location": "fsn1",
                             "services": [{"protocol": "tcp", "listen_port": True}]},
         "listen_port"),
    ],
)  # fmt: skip
def test_bad_nested_input_is_invalid_input(
    sim: HcloudSim, path: str, body: dict[str, Any], field: str
) -> None:
    response = call(sim, "POST", path, json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["name"] == field
