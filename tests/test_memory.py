"""A process that trains and probes unit after unit must not keep the memory each unit freed."""

from __future__ import annotations

import pytest

from trainers import memory


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(memory._malloc_trim() is None, reason="the C library has no malloc_trim (not glibc)")
def test_release_memory_returns_freed_heap_to_the_os():
    # 2 KB blocks go to malloc's heap (not mmap); a block allocated after them keeps the heap's top in use,
    # so free() alone returns nothing: the pattern of a probe's many buffers freed under a live model.
    blocks = [bytes(2000) for _ in range(100_000)]
    keep = bytes(2000)
    held = _rss_mb()
    del blocks
    assert _rss_mb() > held - 50, "freeing alone should have kept the pages (else this test proves nothing)"
    assert memory.release_memory()
    assert _rss_mb() < held - 150
    del keep

