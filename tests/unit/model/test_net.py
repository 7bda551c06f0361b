from __future__ import annotations

import pytest

from hk8s.errors import UsageError
from hk8s.model.net import parse_port_map, rewrite_port


def test_mapped_port_is_rewritten_and_others_kept() -> None:
    env = {"HK8S_PORT_MAP": "22=10022, 80=8080"}
    assert rewrite_port("127.0.0.9", 22, env) == ("127.0.0.9", 10022)
    assert rewrite_port("127.0.0.9", 80, env) == ("127.0.0.9", 8080)
    assert rewrite_port("127.0.0.9", 6443, env) == ("127.0.0.9", 6443)


def test_unset_map_is_identity() -> None:
    assert rewrite_port("10.0.0.1", 22, {}) == ("10.0.0.1", 22)
    assert parse_port_map("") == {}


@pytest.mark.parametrize("raw", ["22", "22=x", "0=22", "22=70000", "a=b,22=10022"])
def test_invalid_map_is_a_usage_error(raw: str) -> None:
    with pytest.raises(UsageError, match="HK8S_PORT_MAP"):
        rewrite_port("h", 22, {"HK8S_PORT_MAP": raw})
