"""Which 127.<block>.0.0/16 a world uses, claimed so that two worlds never share one.

Worlds side by side on one machine (parallel test runs, a demo next to a test) must not
answer each other's connections. Drawing the block at random let two worlds draw the same
one. A world now claims its block by binding a listening socket on ``127.<block>.255.254``
at a fixed port and holding it while it runs: a second world, in any process, fails the bind
and takes the next block. The kernel drops the claim with the process, however it ends.
"""

from __future__ import annotations

import errno
import random
import socket

__all__ = ["BLOCKS", "CLAIM_PORT", "claim_block"]

BLOCKS = range(16, 250)
CLAIM_PORT = 39_871


def claim_block(preferred: int | None = None) -> tuple[int, socket.socket]:
    """A free block and the socket holding it (close it to release the block)."""
    order = list(BLOCKS)
    random.SystemRandom().shuffle(order)
    if preferred is not None:
        order = [preferred]
    for block in order:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((f"127.{block}.255.254", CLAIM_PORT))
            sock.listen(1)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE and preferred is None:
                continue
            raise
        return block, sock
    raise OSError(errno.EADDRINUSE, "every 127.x address block is in use by another world")
