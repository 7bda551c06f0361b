"""The image factory the rescue systems under test download from."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest

from hk8s.sim.factory import ImageFactory

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def factory_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    factory = asyncio.run_coroutine_threadsafe(ImageFactory().start("127.0.0.1", 0), loop).result()
    yield factory.url
    asyncio.run_coroutine_threadsafe(factory.close(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
