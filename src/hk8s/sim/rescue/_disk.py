"""A server's simulated system disk: sparse, thread-safe, and readable as an image.

Hetzner servers have one disk, ``/dev/sda`` in the rescue system. We keep only the bytes that
were written (up to a high-water mark); everything else reads as zeros. ``image()`` says which
Talos image the disk holds, which is what ``create_image`` records on the snapshot.

>>> disk = SimulatedDisk(40 * 10**9)
>>> disk.write(0, b"hello"); disk.read(0, 7)
b'hello\\x00\\x00'
"""

from __future__ import annotations

import threading

from hk8s.sim.factory import TalosImage, read_image

__all__ = ["MAX_DISK_CONTENT", "DiskError", "SimulatedDisk"]

# The simulator keeps at most this much written data per disk (images are 1 MiB).
MAX_DISK_CONTENT = 256 * 1024 * 1024


class DiskError(OSError):
    """An I/O request the disk cannot serve (past its end, or too large to simulate)."""


class SimulatedDisk:
    """The bytes written to one server's disk, its size, and an optional OS label."""

    def __init__(self, size: int, content: bytes = b"", os_name: str | None = None) -> None:
        self.size = size
        self._data = bytearray(content)
        # A stock Hetzner system image (e.g. "ubuntu-24.04") is not simulated byte by byte:
        # the disk just remembers which one it holds until something overwrites the start.
        self.os_name = os_name
        self.bytes_written = 0
        self.discards = 0
        self._lock = threading.Lock()

    @property
    def content(self) -> bytes:
        """Everything up to the high-water mark (the rest of the disk is zeros)."""
        with self._lock:
            return bytes(self._data)

    def write(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        if end > self.size:
            raise DiskError("No space left on device")
        if end > MAX_DISK_CONTENT:
            raise DiskError(f"the simulated disk keeps at most {MAX_DISK_CONTENT} bytes of data")
        with self._lock:
            if end > len(self._data):
                self._data.extend(bytes(end - len(self._data)))
            self._data[offset:end] = data
            self.bytes_written += len(data)
            if offset < 4096 and data:
                self.os_name = None

    def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        if length > MAX_DISK_CONTENT:
            raise DiskError(f"reads of more than {MAX_DISK_CONTENT} bytes are not simulated")
        with self._lock:
            chunk = bytes(self._data[offset : offset + length])
        return chunk + bytes(length - len(chunk))

    def discard(self) -> None:
        """``blkdiscard``: the whole device reads as zeros afterwards."""
        with self._lock:
            self._data = bytearray()
            self.os_name = None
            self.discards += 1

    def wipe_signatures(self) -> None:
        """``wipefs -a``: clear the partition table and filesystem magic at the start."""
        with self._lock:
            self._data[:4096] = bytes(min(4096, len(self._data)))
            self.os_name = None

    def image(self) -> TalosImage | None:
        return read_image(self.read(0, 256))
