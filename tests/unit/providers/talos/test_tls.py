"""Maintenance (insecure) and mTLS connections to a server with an Ed25519 certificate."""

from __future__ import annotations

from typing import Any

import pytest

from hk8s.errors import AuthError, SecretsError, UnavailableError, UsageError
from hk8s.model import ManualClock, Timing
from hk8s.providers.talos import (
    ApplyMode,
    MaintenanceModeError,
    TalosClient,
    TalosCredentials,
)

FAST = Timing(request_timeout=5.0, retry_initial=1.0, retry_max=4.0, retry_attempts=3)


def creds(pki: Any, client: Any = None, label: str = "ED25519 PRIVATE KEY") -> TalosCredentials:
    client = client or pki.client
    return TalosCredentials(ca=pki.ca.crt_pem, crt=client.crt_pem, key=client.key_pem(label))


async def test_maintenance_mode_applies_config_without_client_cert(talos_server: Any) -> None:
    node = await talos_server(mtls=False)
    async with TalosClient([node.ip], insecure=True, timing=FAST, clock=ManualClock()) as talos:
        (version,) = await talos.version()
        (applied,) = await talos.apply_configuration(b"machine: {}", ApplyMode.AUTO)
    assert version.unwrap().tag == "v1.11.5"
    assert version.node == node.ip  # no fan-out: the endpoint answered for itself
    assert applied.unwrap().mode is ApplyMode.REBOOT  # what the node chose for AUTO
    assert applied.unwrap().warnings == ("w",)
    assert node.fake.requests[-1].data == b"machine: {}"
    assert node.fake.requests[-1].mode == 1  # AUTO on the wire


async def test_maintenance_mode_refuses_other_calls_with_a_clear_error(talos_server: Any) -> None:
    node = await talos_server(mtls=False)
    async with TalosClient([node.ip], insecure=True, timing=FAST, clock=ManualClock()) as talos:
        with pytest.raises(MaintenanceModeError) as err:
            await talos.bootstrap()
    assert "maintenance mode" in str(err.value)
    assert err.value.hint and "apply a machine config" in err.value.hint


@pytest.mark.parametrize(
    ("which", "label"),
    [
        ("client", "ED25519 PRIVATE KEY"),  # as talosctl writes talosconfig keys
        ("client", "PRIVATE KEY"),
        ("client_ecdsa", "PRIVATE KEY"),
        ("client_ecdsa", "EC PRIVATE KEY"),
    ],
)
async def test_mtls_with_ed25519_and_ecdsa_client_keys(
    talos_server: Any, pki: Any, which: str, label: str
) -> None:
    node = await talos_server(mtls=True)
    credentials = creds(pki, getattr(pki, which), label)
    async with TalosClient([node.ip], credentials=credentials, timing=FAST) as talos:
        (version,) = await talos.version()
    assert version.unwrap().rbac is True


async def test_client_cert_from_another_ca_is_refused(talos_server: Any, pki: Any) -> None:
    node = await talos_server(mtls=True)
    clock = ManualClock()
    credentials = TalosCredentials(
        ca=pki.ca.crt_pem, crt=pki.rogue_client.crt_pem, key=pki.rogue_client.key_pem()
    )
    async with TalosClient([node.ip], credentials=credentials, timing=FAST, clock=clock) as talos:
        with pytest.raises(AuthError, match="refused the client certificate"):
            await talos.version()
    assert clock.slept == []  # not worth retrying
    assert node.fake.calls == []  # the call never reached the service


async def test_insecure_client_is_refused_by_a_configured_node(talos_server: Any) -> None:
    node = await talos_server(mtls=True)
    async with TalosClient([node.ip], insecure=True, timing=FAST, clock=ManualClock()) as talos:
        with pytest.raises(AuthError):
            await talos.version()


async def test_server_cert_not_from_the_cluster_ca_is_not_trusted(
    talos_server: Any, pki: Any
) -> None:
    # What a node still in maintenance mode (self-signed cert) looks like to an mTLS client.
    node = await talos_server(mtls=True, cert=pki.rogue_server)
    clock = ManualClock()
    async with TalosClient([node.ip], credentials=creds(pki), timing=FAST, clock=clock) as talos:
        with pytest.raises(UnavailableError, match="not signed by the cluster CA"):
            await talos.version()
    assert clock.slept == [1.0, 2.0]  # retried: the node may be about to reboot
    assert node.fake.calls == []


def test_client_key_must_belong_to_the_certificate(pki: Any) -> None:
    wrong = TalosCredentials(
        ca=pki.ca.crt_pem, crt=pki.client.crt_pem, key=pki.client_ecdsa.key_pem()
    )
    with pytest.raises(SecretsError, match="does not belong"):
        TalosClient(["127.0.0.1"], credentials=wrong)


def test_credentials_never_show_the_key(pki: Any) -> None:
    assert b"KEY" not in repr(creds(pki)).encode().replace(b"key=<hidden>", b"")


def test_a_client_is_either_mtls_or_insecure(pki: Any) -> None:
    with pytest.raises(UsageError):
        TalosClient(["127.0.0.1"])
    with pytest.raises(UsageError):
        TalosClient(["127.0.0.1"], credentials=creds(pki), insecure=True)


def test_one_tls_context_per_credential_set_for_every_node(
    pki: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A context per node loaded the same CA and client certificate 100 times in a 100-node
    # create (about 1.8 MiB each); the create's retrying and probing clients share it too.
    from hk8s.providers.talos import TalosNodes, _tls

    built: list[object] = []
    real = _tls.mtls_context

    def counting(credentials: TalosCredentials) -> object:
        built.append(credentials)
        return real(credentials)

    monkeypatch.setattr(_tls, "mtls_context", counting)
    _tls._mtls.cache_clear()
    talos, probe = TalosNodes(creds(pki)), TalosNodes(creds(pki), timing=FAST)
    clients = [t.client(f"127.0.0.{i}") for i in range(1, 51) for t in (talos, probe)]
    maintenance = [talos.client(f"127.0.0.{i}", maintenance=True) for i in range(1, 51)]
    assert len(built) == 1
    assert len({id(c._transport._ssl) for c in clients}) == 1
    assert len({id(c._transport._ssl) for c in maintenance}) == 1
    other = TalosNodes(creds(pki, pki.client_ecdsa)).client("127.0.0.1")
    assert len(built) == 2 and other._transport._ssl is not clients[0]._transport._ssl
