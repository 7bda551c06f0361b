"""A small reader and writer of bbolt database files, the storage format of etcd's backend.

etcd snapshots (``etcdctl snapshot save``, Talos' ``EtcdSnapshot``) are the member's bbolt file
as it is, followed by a SHA-256 trailer; ``hk8s etcd snapshot`` reads one back to report its
revision, and the simulator writes one so that what it streams is what a real node streams.
Only what etcd uses is supported: one level of buckets under the root, no nested buckets.

The layout follows go.etcd.io/bbolt (``page.go``, ``db.go``, ``bucket.go``, ``freelist.go``):

- every page starts with a 16-byte header: ``id u64, flags u16, count u16, overflow u32``;
  a page spans ``1 + overflow`` pages of ``page_size`` bytes;
- pages 0 and 1 hold the meta (``magic, version, page_size, flags, root{pgid, sequence},
  freelist, pgid, txid, checksum``), the valid one with the higher txid wins; ``checksum`` is
  FNV-1a 64 of the meta's bytes before it;
- leaf elements are ``flags u32, pos u32, ksize u32, vsize u32`` and branch elements
  ``pos u32, ksize u32, pgid u64``, ``pos`` counted from the element itself;
- a bucket's value in its parent is ``root u64, sequence u64``; ``root == 0`` means an inline
  bucket whose leaf page follows in the value.

All integers are little-endian (bbolt writes its structs in host order; every platform etcd
supports is little-endian).

>>> blob = write_bbolt({b"key": [(b"a", b"1")], b"meta": []})
>>> read_bbolt(blob)[b"key"]
[(b'a', b'1')]
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mmap
    from collections.abc import Iterator, Mapping, Sequence

    # Anything that slices like bytes: a snapshot file is read through mmap, never copied.
    Buffer = bytes | bytearray | memoryview | mmap.mmap

__all__ = ["BboltError", "Buffer", "read_bbolt", "write_bbolt"]

MAGIC = 0xED0CDAED
VERSION = 2
PAGE_SIZE = 4096
_BRANCH, _LEAF, _META_FLAG, _FREELIST = 0x01, 0x02, 0x04, 0x10
_BUCKET_LEAF = 0x01
_HEADER = struct.Struct("<QHHI")
_META = struct.Struct("<IIIIQQQQQQ")  # ... root{pgid, sequence}, freelist, pgid, txid, checksum
_LEAF_ELEMENT = struct.Struct("<IIII")
_BRANCH_ELEMENT = struct.Struct("<IIQ")
_BUCKET = struct.Struct("<QQ")

Pairs = list[tuple[bytes, bytes]]


class BboltError(ValueError):
    """The bytes are not a (supported) bbolt database."""


def _fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def _leaf(pgid: int, items: Sequence[tuple[bytes, bytes, int]], page_size: int) -> bytes:
    """A leaf page (with overflow pages as needed) holding ``(key, value, flags)`` items."""
    elements = bytearray()
    data = bytearray()
    base = _HEADER.size + _LEAF_ELEMENT.size * len(items)
    for i, (key, value, flags) in enumerate(items):
        pos = base + len(data) - (_HEADER.size + _LEAF_ELEMENT.size * i)
        elements += _LEAF_ELEMENT.pack(flags, pos, len(key), len(value))
        data += key + value
    size = base + len(data)
    pages = max(1, -(-size // page_size))
    header = _HEADER.pack(pgid, _LEAF, len(items), pages - 1)
    return (header + elements + data).ljust(pages * page_size, b"\0")


def _meta_page(pgid: int, txid: int, root: int, freelist: int, hwm: int, size: int) -> bytes:
    fields = [MAGIC, VERSION, size, 0, root, 0, freelist, hwm, txid]
    body = _META.pack(*fields, 0)[:-8]
    meta = body + struct.pack("<Q", _fnv1a64(body))
    return (_HEADER.pack(pgid, _META_FLAG, 0, 0) + meta).ljust(size, b"\0")


def write_bbolt(
    buckets: Mapping[bytes, Sequence[tuple[bytes, bytes]]], page_size: int = PAGE_SIZE
) -> bytes:
    """A database holding ``buckets`` (name -> key/value pairs), as one committed transaction.

    Each bucket gets its own leaf page; keys are sorted as bbolt keeps them. Pages 0-1 are the
    metas, 2 the (empty) freelist, 3 the root bucket, then the buckets in name order.
    """
    names = sorted(buckets)
    pages: list[bytes] = []
    next_pgid = 4
    headers: list[tuple[bytes, bytes, int]] = []
    for name in names:
        items = [(k, v, 0) for k, v in sorted(buckets[name])]
        page = _leaf(next_pgid, items, page_size)
        headers.append((name, _BUCKET.pack(next_pgid, 0), _BUCKET_LEAF))
        pages.append(page)
        next_pgid += len(page) // page_size
    root = _leaf(3, headers, page_size)
    if len(root) != page_size:
        raise BboltError("too many buckets for one root page")
    freelist = _HEADER.pack(2, _FREELIST, 0, 0).ljust(page_size, b"\0")
    metas = [_meta_page(i, i, 3, 2, next_pgid, page_size) for i in (0, 1)]
    return b"".join([*metas, freelist, root, *pages])


def _page(db: memoryview, pgid: int, page_size: int) -> tuple[int, int, memoryview]:
    start = pgid * page_size
    if start + _HEADER.size > len(db):
        raise BboltError(f"page {pgid} lies beyond the end of the file")
    page_id, flags, count, overflow = _HEADER.unpack_from(db, start)
    if page_id != pgid:
        raise BboltError(f"page {pgid} claims to be page {page_id}")
    end = start + (overflow + 1) * page_size
    if end > len(db):
        raise BboltError(f"page {pgid} runs past the end of the file")
    return flags, count, db[start:end]


def _leaf_items(page: memoryview, count: int) -> Iterator[tuple[bytes, bytes, int]]:
    for i in range(count):
        offset = _HEADER.size + _LEAF_ELEMENT.size * i
        flags, pos, ksize, vsize = _LEAF_ELEMENT.unpack_from(page, offset)
        start = offset + pos
        key, value = page[start : start + ksize], page[start + ksize : start + ksize + vsize]
        yield bytes(key), bytes(value), flags


def _walk(
    db: memoryview, pgid: int, page_size: int, depth: int = 0
) -> Iterator[tuple[bytes, bytes, int]]:
    if depth > 64:
        raise BboltError("the B+tree is deeper than any real database")
    flags, count, page = _page(db, pgid, page_size)
    if flags & _LEAF:
        yield from _leaf_items(page, count)
    elif flags & _BRANCH:
        for i in range(count):
            _, _, child = _BRANCH_ELEMENT.unpack_from(page, _HEADER.size + _BRANCH_ELEMENT.size * i)
            yield from _walk(db, child, page_size, depth + 1)
    else:
        raise BboltError(f"page {pgid} is neither a leaf nor a branch (flags {flags:#x})")


def _read_meta(db: memoryview, offset: int) -> tuple[int, int, int] | None:
    """(txid, root pgid, page size) of the meta at ``offset``, or None if it is not valid."""
    if offset + _META.size > len(db):
        return None
    magic, version, size, _, root, _, _, _, txid, checksum = _META.unpack_from(db, offset)
    body = db[offset : offset + _META.size - 8]
    if magic != MAGIC or version != VERSION or checksum != _fnv1a64(bytes(body)):
        return None
    return txid, root, size


def _meta(db: memoryview) -> tuple[int, int]:
    """(root bucket pgid, page size) from the valid meta page with the higher txid."""
    first = _read_meta(db, _HEADER.size)
    # Page 1 sits one page in; with page 0 damaged bbolt assumes the default page size.
    page_size = first[2] if first else PAGE_SIZE
    second = _read_meta(db, page_size + _HEADER.size)
    valid = [meta for meta in (first, second) if meta is not None]
    if not valid:
        raise BboltError("no valid bbolt meta page (wrong magic, version or checksum)")
    _, root, size = max(valid)
    return root, size


def read_bbolt(data: Buffer) -> dict[bytes, Pairs]:
    """Every top-level bucket of the database and its key/value pairs, in key order."""
    try:
        return _read(memoryview(data))
    except (struct.error, IndexError) as exc:  # an offset pointing outside its page or file
        raise BboltError(f"damaged database: {exc}") from exc


def _read(db: memoryview) -> dict[bytes, Pairs]:
    root, page_size = _meta(db)
    buckets: dict[bytes, Pairs] = {}
    for name, value, flags in _walk(db, root, page_size):
        if not flags & _BUCKET_LEAF:
            continue  # a plain key in the root bucket: etcd writes none
        bucket_root, _ = _BUCKET.unpack_from(value)
        if bucket_root == 0:
            inline = memoryview(value)[_BUCKET.size :]
            _, _, count, _ = _HEADER.unpack_from(inline)
            items = _leaf_items(inline, count)
        else:
            items = _walk(db, bucket_root, page_size)
        buckets[name] = [(k, v) for k, v, f in items if not f & _BUCKET_LEAF]
    return buckets
