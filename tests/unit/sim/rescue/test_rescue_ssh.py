"""The rescue system as hk8s' image build sees it: paramiko over SSH, a shell, a disk."""

from __future__ import annotations

import hashlib
import io
import json
import lzma
from dataclasses import dataclass
from typing import TYPE_CHECKING

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from hk8s.sim.factory import DEFAULT_SCHEMATIC_ID, TalosImage, build_image, raw_image
from hk8s.sim.rescue import Machine, RescueServer, SimulatedDisk

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass
class Rescue:
    server: RescueServer
    disk: SimulatedDisk
    key: paramiko.PKey
    password: str
    factory_url: str
    power: list[str]

    def client(
        self, *, password: str | None = None, key: paramiko.PKey | None = None
    ) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            self.server.host,
            port=self.server.port,
            username="root",
            pkey=None if password else (key or self.key),
            password=password,
            look_for_keys=False,
            allow_agent=False,
            timeout=5,
        )
        return client


def ed25519_key() -> paramiko.PKey:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return paramiko.Ed25519Key(file_obj=io.StringIO(pem.decode()))


@pytest.fixture
def rescue(factory_url: str) -> Iterator[Rescue]:
    key = ed25519_key()
    power: list[str] = []
    disk = SimulatedDisk(40 * 10**9, os_name="ubuntu-24.04")
    machine = Machine(disk=disk, on_power=power.append)
    public = f"{key.get_name()} {key.get_base64()} test@hk8s"
    server = RescueServer(
        "127.0.0.1", 0, machine, authorized_keys=[public], password="s3cret"
    ).start()
    yield Rescue(server, disk, key, "s3cret", factory_url, power)
    server.stop()


def run(
    client: paramiko.SSHClient, command: str, stdin: bytes | None = None
) -> tuple[int, str, str]:
    chan_in, out, err = client.exec_command(command, timeout=10)
    if stdin is not None:
        chan_in.write(stdin)
        chan_in.channel.shutdown_write()
    code = out.channel.recv_exit_status()
    return code, out.read().decode(), err.read().decode()


def test_key_auth_accepts_the_rescue_key_only(rescue: Rescue) -> None:
    with rescue.client() as client:
        assert run(client, "echo ok") == (0, "ok\n", "")
    with pytest.raises(paramiko.AuthenticationException):
        rescue.client(key=ed25519_key())


def test_password_auth_uses_the_api_root_password(rescue: Rescue) -> None:
    with rescue.client(password=rescue.password) as client:
        assert run(client, "uname -m")[:2] == (0, "x86_64\n")
    with pytest.raises(paramiko.AuthenticationException):
        rescue.client(password="wrong")


def test_image_build_pipeline_writes_the_decompressed_image(rescue: Rescue) -> None:
    image = TalosImage("v1.11.3", "amd64", DEFAULT_SCHEMATIC_ID)
    url = f"{rescue.factory_url}/image/{DEFAULT_SCHEMATIC_ID}/v1.11.3/hcloud-amd64.raw.xz"
    script = (
        "set -euo pipefail; lsblk -d -n -o NAME,SIZE,TYPE; blkdiscard -f /dev/sda; "
        f"wget -q -O - {url} | xz -d | dd of=/dev/sda bs=4M conv=fsync status=none && sync"
    )
    with rescue.client() as client:
        code, out, err = run(client, script)
        assert (code, out, err) == (0, "sda 37.3G disk\n", "")
        assert rescue.disk.image() == image
        assert rescue.disk.content == raw_image(image)
        # Verify like a careful build would: the first bytes of the disk match the download.
        size = len(raw_image(image))
        code, out, _ = run(client, f"head -c {size} /dev/sda | sha256sum")
        assert out == f"{hashlib.sha256(raw_image(image)).hexdigest()}  -\n"
        check = f"curl -fsSL {url} | xz -dc | cmp -n {size} - /dev/sda && echo same"
        assert run(client, check)[:2] == (0, "same\n")
        code, _, _ = run(client, "shutdown -h now")
    assert code == 0
    assert rescue.power == ["poweroff"]


def test_image_streamed_over_stdin(rescue: Rescue) -> None:
    image = TalosImage("v1.12.1", "arm64")
    with rescue.client() as client:
        code, _, err = run(client, "xz -dc | dd of=/dev/sda bs=1M", stdin=build_image(image))
    assert code == 0
    assert "records out" in err
    assert rescue.disk.image() == image


def test_unsupported_commands_fail_like_a_shell(rescue: Rescue) -> None:
    with rescue.client() as client:
        assert run(client, "parted -s /dev/sda print") == (
            127,
            "",
            "bash: parted: command not found\n",
        )
        code, _, err = run(client, "lsblk --frobnicate")
        assert code == 1 and "lsblk: option --frobnicate not recognized" in err
        code, _, err = run(client, "dd of=/dev/sda bogus=1")
        assert code == 1 and "unrecognized operand 'bogus=1'" in err
        # Without `set -e` a list goes on; with it, the first failure stops it.
        assert run(client, "false; echo after")[:2] == (0, "after\n")
        assert run(client, "set -e; false; echo after")[:2] == (1, "")
        assert run(client, "false | true")[0] == 0
        assert run(client, "set -o pipefail; false | true")[0] == 1


def test_downloads_fail_with_real_exit_codes(rescue: Rescue) -> None:
    missing = f"{rescue.factory_url}/image/{DEFAULT_SCHEMATIC_ID}/v9.9.9/hcloud-amd64.raw.xz"
    with rescue.client() as client:
        code, _, err = run(client, f"curl -fsSL {missing}")
        assert (code, err) == (22, "curl: (22) The requested URL returned error: 404\n")
        assert run(client, f"wget -q -O - {missing}")[0] == 8
        code, _, err = run(client, "curl -fsSL https://factory.talos.dev/x")
        assert code == 6 and "Could not resolve host" in err
        code, _, err = run(client, "echo garbage | xz -d")
        assert (code, err) == (1, "xz: (stdin): File format not recognized\n")
    assert rescue.disk.image() is None


def test_lsblk_json_and_fdisk(rescue: Rescue) -> None:
    with rescue.client() as client:
        _, out, _ = run(client, "lsblk -J -b -d -o NAME,SIZE,TYPE")
        assert json.loads(out) == {
            "blockdevices": [{"name": "sda", "size": 40 * 10**9, "type": "disk"}]
        }
        _code, out, _ = run(client, "fdisk -l /dev/sda")
        assert out.startswith("Disk /dev/sda: 37.25 GiB, 40000000000 bytes, 78125000 sectors\n")
        # blkdiscard leaves an empty disk: no partitions, nothing to snapshot.
        run(client, "blkdiscard /dev/sda")
        assert run(client, "lsblk -n -o NAME")[1] == "sda\n"
    assert rescue.disk.image() is None
    assert lzma.decompress(build_image(TalosImage("v1.11.3", "amd64")))[:4] == b"HK8S"
