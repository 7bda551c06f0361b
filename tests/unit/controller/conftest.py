from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from hk8s.controller import InfraIntent, LoadBalancerIntent, PoolIntent
from hk8s.providers.hcloud.fake import FakeHcloud


def make_intent(**changes: Any) -> InfraIntent:
    base = InfraIntent(
        cluster="demo",
        location="fsn1",
        network_zone="eu-central",
        network_cidr="10.0.0.0/16",
        node_subnet="10.0.1.0/24",
        pools=(PoolIntent("cp", 3, "control-plane"), PoolIntent("workers", 12, "worker")),
        kube_api_sources=("203.0.113.7/32",),
        talos_api_sources=("203.0.113.7/32",),
        load_balancer=LoadBalancerIntent("lb11", "fsn1"),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def intent() -> InfraIntent:
    return make_intent()


@pytest.fixture
def intent_factory() -> Any:
    return make_intent


@pytest.fixture
def fake() -> FakeHcloud:
    return FakeHcloud()
