"""``quorum_refusal``: which node actions would leave etcd without a majority."""

from __future__ import annotations

import pytest

from hk8s.controller import quorum_refusal

THREE = ["cp-1", "cp-2", "cp-3"]


@pytest.mark.parametrize(
    ("action", "members", "down", "refused"),
    [
        ("reboot", THREE, set(), False),  # 2 of 3 stay up
        ("reboot", THREE, {"cp-2"}, True),  # 1 of 3 would be up
        ("reboot", THREE, {"cp-1"}, False),  # the node itself being down changes nothing
        ("reboot", ["cp-1"], set(), True),  # a single member: the API goes away
        ("reset", THREE, set(), False),  # 2 of 2 remaining
        ("reset", THREE, {"cp-3"}, True),  # 1 of 2 remaining
        ("replace", ["cp-1", "cp-2"], set(), False),  # 1 of 1 remaining
        ("replace", ["cp-1"], set(), True),  # the last member
        ("reset", [*THREE, "cp-4", "cp-5"], {"cp-5"}, False),  # 3 of 4 remaining
        ("reset", [*THREE, "cp-4", "cp-5"], {"cp-4", "cp-5"}, True),  # 2 of 4
    ],
)
def test_quorum(action: str, members: list[str], down: set[str], refused: bool) -> None:
    why = quorum_refusal(action, "cp-1", members, down)  # type: ignore[arg-type]
    assert (why is not None) == refused, why


def test_a_node_outside_etcd_never_endangers_quorum() -> None:
    assert quorum_refusal("reset", "w-1", THREE, {"cp-2", "cp-3"}) is None


def test_the_message_says_how_many_would_be_up() -> None:
    why = quorum_refusal("reset", "cp-1", THREE, {"cp-3"})
    assert why == "without cp-1, 1 of 2 remaining etcd members would be up (2 needed)"
