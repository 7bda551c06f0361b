"""What the control planes of one simulated Talos cluster share: etcd and the Kubernetes API.

Real etcd is a raft group; here one ``TalosCluster`` per cluster (machine config ``cluster.id``,
else the endpoint) holds the member list and the leader, so every node answers EtcdMemberList
and EtcdStatus consistently. A member whose node is down still counts as a member (as in
etcd) but not towards quorum; without quorum, etcd calls fail like a leaderless etcd does.

>>> cluster = TalosCluster("id", "https://127.2.0.1:6443", "demo")
>>> member = cluster.bootstrap("demo-cp-1", "127.1.0.2")
>>> cluster.leader == member.id
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from hk8s.model.etcd_snapshot import KeyValue
    from hk8s.pki import CertAndKey

__all__ = ["EtcdError", "EtcdMember", "TalosCluster"]

ETCD_VERSION = "3.5.21"


class EtcdError(Exception):
    """An etcd call failed; ``code`` is the gRPC status name Talos passes on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class EtcdMember:
    """``ip`` is the node's (public) address, by which the fleet finds it; ``advertised`` is
    the address etcd advertises to its peers (Talos' etcd spec controller picks it)."""

    id: int
    hostname: str
    ip: str
    learner: bool = False
    started: bool = True
    advertised: str = ""
    # False once the node's EPHEMERAL partition (etcd's data directory) was wiped.
    has_data: bool = True

    @property
    def address(self) -> str:
        return self.advertised or self.ip

    @property
    def peer_urls(self) -> list[str]:
        return [f"https://{self.address}:2380"]

    @property
    def client_urls(self) -> list[str]:
        return [f"https://{self.address}:2379"]


@dataclass
class TalosCluster:
    """One cluster's shared state. ``os_ca``/``k8s_ca`` come from control-plane configs."""

    key: str
    endpoint: str
    name: str
    os_ca: CertAndKey | None = None
    members: dict[int, EtcdMember] = field(default_factory=dict)
    leader: int = 0
    bootstrapped: bool = False
    raft_term: int = 1
    raft_index: int = 1
    kube_api_up: bool = False
    # What etcd holds: the Kubernetes API's objects (set by the world once the API runs).
    keyspace: Callable[[], Sequence[KeyValue]] | None = None
    # Called when every member's data is gone, and when a snapshot is restored (the world
    # empties / refills the Kubernetes API's objects).
    wipe_keyspace: Callable[[], None] | None = None
    restore_keyspace: Callable[[Sequence[KeyValue]], Awaitable[None]] | None = None
    # Raised etcd alarms by member id ("NOSPACE", "CORRUPT"): set by tests as etcd would.
    alarms: dict[int, str] = field(default_factory=dict)

    def alarm_errors(self) -> list[str]:
        """Alarms as etcd's Status lists them in ``errors`` (``AlarmMember.String()``)."""
        return [f"memberID:{member} alarm:{alarm} " for member, alarm in self.alarms.items()]

    _rng: random.Random = field(default_factory=lambda: random.Random(7))

    # --------------------------------------------------------------------- membership
    def _new_id(self) -> int:
        while True:
            member_id = self._rng.getrandbits(64) or 1
            if member_id not in self.members:
                return member_id

    def bootstrap(self, hostname: str, ip: str, advertised: str = "") -> EtcdMember:
        member = EtcdMember(self._new_id(), hostname, ip, advertised=advertised)
        self.members = {member.id: member}
        self.leader, self.bootstrapped = member.id, True
        self.raft_term += 1
        return member

    def join(self, hostname: str, ip: str, advertised: str = "") -> EtcdMember:
        """Add (or re-add after a reboot) the member for a control plane node."""
        existing = self.member_for(ip)
        if existing is not None:
            existing.started = True
            existing.has_data = True  # a wiped member syncs from the others again
            existing.hostname = hostname
            self._elect()
            return existing
        self.require_quorum()
        member = EtcdMember(self._new_id(), hostname, ip, advertised=advertised)
        self.members[member.id] = member
        self.raft_index += 1
        self._elect()
        return member

    def member_for(self, ip: str) -> EtcdMember | None:
        return next((m for m in self.members.values() if m.ip == ip), None)

    def set_started(self, ip: str, started: bool) -> None:
        member = self.member_for(ip)
        if member is not None:
            member.started = started
            self._elect()

    def remove(self, member_id: int) -> EtcdMember:
        self.require_quorum()
        member = self.members.pop(member_id, None)
        if member is None:
            raise EtcdError("NOT_FOUND", "etcdserver: member not found")
        self.raft_index += 1
        self._elect()
        return member

    def forfeit(self, ip: str) -> str:
        """Move leadership away from the member at ``ip``; returns the new leader's name."""
        self.require_quorum()
        member = self.member_for(ip)
        if member is None or member.id != self.leader:
            return ""
        others = [m for m in self.members.values() if m.started and m.id != member.id]
        if others:
            self.leader = self._rng.choice(others).id
            self.raft_term += 1
        return self.members[self.leader].hostname

    # ------------------------------------------------------------------------- health
    def quorum(self) -> bool:
        voters = [m for m in self.members.values() if not m.learner]
        up = [m for m in voters if m.started]
        return bool(voters) and len(up) * 2 > len(voters)

    def require_quorum(self) -> None:
        if not self.bootstrapped:
            raise EtcdError("UNKNOWN", "failed to create etcd client: etcd is not bootstrapped")
        if not self.quorum():
            raise EtcdError("UNAVAILABLE", "etcdserver: no leader")

    def _elect(self) -> None:
        current = self.members.get(self.leader)
        if current is not None and current.started and self.quorum():
            return
        started = sorted((m for m in self.members.values() if m.started), key=lambda m: m.id)
        self.leader = started[0].id if started and self.quorum() else 0
        self.raft_term += 1

    def data_wiped(self, ip: str) -> None:
        """The member at ``ip`` lost its data directory (a non-graceful reset of EPHEMERAL).

        When no member holds data any more, etcd is gone: no members, not bootstrapped, the
        keyspace lost, until a Bootstrap (with ``recover_etcd``: from a snapshot). A member
        whose data is wiped while others keep theirs rejoins on boot (real etcd would refuse
        it until it is removed and re-added: a deliberate simplification).
        """
        member = self.member_for(ip)
        if member is None:
            return
        member.has_data, member.started = False, False
        if any(m.has_data for m in self.members.values()):
            self._elect()
            return
        self.members, self.leader, self.bootstrapped = {}, 0, False
        self.alarms.clear()
        self.raft_term += 1
        if self.wipe_keyspace is not None:
            self.wipe_keyspace()

    def write(self) -> None:
        """Something was written (a config, an object): the raft index moves on."""
        self.raft_index += 1
