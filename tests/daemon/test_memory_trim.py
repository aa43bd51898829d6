"""The daemon's memory-trim job: memory a burst freed goes back to the system."""

from __future__ import annotations

import platform
import re

import pytest

from daemon.runtime.lean import _rss_kib, release_free_memory

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


@glibc_only
def test_memory_a_burst_freed_below_live_blocks_goes_back_to_the_system() -> None:
    # A burst: 40 MiB of blocks too big for Python's own allocator (so glibc's malloc holds
    # them), then all freed but every 50th: those few keep the freed pages between them
    # inside the heap, and RSS stays up until the trim.
    burst = [bytearray(4000) for _ in range(10_000)]
    kept = burst[::50]
    del burst
    before = _rss_kib()
    detail = release_free_memory()
    after = _rss_kib()
    assert before is not None and after is not None
    assert before - after > 20 * 1024, (before, after)
    # The job's detail says what RSS did, in MiB, for job_runs and the debug log.
    assert detail is not None and re.fullmatch(r"RSS \d+\.\d -> \d+\.\d MiB", detail), detail
    assert len(kept) == 200
