"""Two worlds on one machine never share a 127.x address block."""

from __future__ import annotations

import random

import pytest

from hk8s.sim.world._blocks import claim_block


def test_a_claimed_block_is_never_handed_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # Make every draw try the same block first: the old random draw's bad luck, every time.
    monkeypatch.setattr(random.SystemRandom, "shuffle", lambda self, items: items.sort())
    first, held = claim_block()
    try:
        second, other = claim_block()
        try:
            assert first != second
        finally:
            other.close()
    finally:
        held.close()
    again, released = claim_block()
    released.close()
    assert again == first, "a closed claim frees its block"


def test_a_preferred_block_in_use_is_an_error() -> None:
    block, held = claim_block()
    try:
        with pytest.raises(OSError):
            claim_block(block)
    finally:
        held.close()
