"""The control plane's ports are taken from below the kernel's ephemeral range: a number from
that range can be handed to any outgoing connection as its source port between the check and
the component's bind (etcd then exits "bind: address already in use")."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from hk8s.sim.k8s import _controlplane
from hk8s.sim.k8s._controlplane import free_port

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def ephemeral_range(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's ephemeral port range, as /proc/sys/net/ipv4/ip_local_port_range says."""
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text(text)
    monkeypatch.setattr(_controlplane, "_EPHEMERAL", ranges)


def test_ports_come_from_below_the_ephemeral_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ephemeral_range("32768\t60999\n", tmp_path, monkeypatch)
    ports = {free_port("127.0.0.1") for _ in range(50)}
    assert all(10000 <= port < 32768 for port in ports)
    assert len(ports) > 1  # spread out, so that worlds side by side rarely pick alike
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))  # free when returned


def test_a_range_that_leaves_nothing_below_falls_back_to_the_kernels_pick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ephemeral_range("10500 60999\n", tmp_path, monkeypatch)
    port = free_port("127.0.0.1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
