"""Process memory settings for long scoring loops (the local engine and each Ray actor)."""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def keep_large_buffers_out_of_the_heap() -> None:
    """Fix glibc's mmap threshold at its default (128 KiB).

    glibc raises the threshold each time a large block is freed, after which the chunk- and
    batch-sized buffers this loop frees and reallocates come from its heap arenas, which
    fragment: peak RSS then grew with the number of users scored. Elsewhere than glibc this
    does nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)
