"""Give freed heap memory back to the operating system after a run or a probe.

glibc keeps freed memory in its arenas for reuse instead of returning it, and each thread (torch's intra-op
pool, decoding threads) fragments its own arena. A process that trains and probes unit after unit (a Ray
Tune actor reused across trials, a Ray worker that runs task after task) therefore grows by hundreds of MB
per probe: on 2026-12-05 the study's two trial actors reached 10 GB each after ten trials and Ray killed
one (out of memory on a 24 GB machine). malloc_trim(0) returns every wholly free page, so such a process
stays at the size of one unit."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


@functools.cache
def _malloc_trim():
    """libc's malloc_trim where the C library has it (glibc), else None (macOS, musl, Windows)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_memory() -> bool:
    """Collect garbage cycles, then hand free heap pages back to the OS; True where the C library could."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
