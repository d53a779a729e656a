"""Process memory settings for long scoring loops (the local engine and each Ray actor)."""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
# at most a batch's buffers come from the heap (a padded input of 512 users is ~1 MiB)
MMAP_THRESHOLD = 2 * 1024 * 1024


def keep_large_buffers_out_of_the_heap() -> None:
    """Fix glibc's mmap threshold at 2 MiB (its default is 128 KiB, and rising).

    glibc raises the threshold each time a large block is freed, after which the chunk-sized
    buffers this loop frees and reallocates come from its heap arenas, which fragment: peak
    RSS then grew with the number of users scored. Fixed at 2 MiB, chunk-sized buffers are
    mapped and unmapped as before, while a batch's buffers are reused from the heap instead
    of being mapped afresh, page fault by page fault, for every batch (`bench/score.py
    --only host|scaling`: README). Elsewhere than glibc this does nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
