"""When freed memory leaves the process: glibc's allocator, told what a server needs.

glibc keeps freed heap memory for reuse, so a server's RSS stays at its highest
point. Elsewhere than glibc (macOS, musl) these calls do not exist and nothing
is done: those allocators decide for themselves.
"""

from __future__ import annotations

import contextlib
import ctypes

M_MMAP_THRESHOLD = -3  # mallopt's parameter, from glibc's malloc.h
# Blocks of this size or more are mapped on their own and unmapped when freed. glibc's
# own threshold rises to the size of each large block freed (up to 32 MB), after which
# such blocks come from the heap and stay resident when freed. 4 MB: numpy's arrays of
# a probe stay below it (every block above it costs page faults when reused); the
# model's working memory for a long clip lies above it.
LARGE_BLOCK = 4 << 20


def unmap_large_blocks() -> None:
    """From now on, large blocks go back to the system when freed (process-wide)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK)


def give_back_freed() -> None:
    """Return the heap pages that are free now to the system."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)
