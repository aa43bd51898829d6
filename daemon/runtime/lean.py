"""Keeps library parts that shopbell never uses (or rarely) out of its memory."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

# Each name is set to None in sys.modules, so importing it raises ImportError: what each
# library does when that part is not installed. Measured with bench/idle_memory.py.
NEVER_IMPORTED = (
    # httpx imports its command-line tool (rich and pygments, ~3.3 MiB of RSS) whenever rich
    # and click are installed, and textual brings rich. Without it httpx.main() says to
    # install httpx[cli]; shopbell never calls it.
    "httpx._main",
    # FastAPI imports pydantic.v1 (~1.7 MiB) only to ask whether a model is a v1 one and
    # takes ImportError for "no": every shopbell model is a pydantic 2 model.
    "pydantic.v1",
)


def skip_unused_imports() -> None:
    """Must run before httpx and FastAPI are imported; a part already imported stays."""
    for name in NEVER_IMPORTED:
        sys.modules.setdefault(name, None)


@contextlib.contextmanager
def models_built_on_first_use() -> Iterator[None]:
    """Pydantic models defined inside the block build their validators at first use.

    Pydantic builds a model's validator and serializer (in Rust, outside Python's heap) when
    the class is defined; `defer_build` is its own switch for "when first used" instead. It is
    on only inside the block.
    """
    import pydantic  # here, not at the top: `import daemon` runs this module first

    config = pydantic.BaseModel.model_config
    before = config.get("defer_build")
    config["defer_build"] = True
    try:
        yield
    finally:
        if before is None:
            config.pop("defer_build", None)
        else:
            config["defer_build"] = before


def import_fastapi() -> None:
    """Imports FastAPI with the ~40 models of its OpenAPI document built at first use.

    Only /api/openapi.json, /api/docs and the index use them (~1.3 MiB of RSS when built).
    """
    if "fastapi" in sys.modules:
        return
    with models_built_on_first_use():
        import fastapi  # noqa: F401 -- imported for its side effect: the modules are loaded


# glibc's mallopt parameter for the most malloc arenas (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8


def one_malloc_arena() -> bool:
    """Every thread allocates from glibc's main heap; call before the daemon's threads start.

    glibc gives each new thread that calls malloc an arena of its own (up to 8 per core),
    and each arena keeps its own free memory: the database thread's (SQLite's page cache and
    statements) and each provider pool thread's. Python allocates under its GIL anyway, so
    one arena costs no contention worth having: 0.1-0.3 MiB less at idle
    (bench/idle_memory.py). False where the C library is not glibc (nothing changes there).
    """
    mallopt = _glibc("mallopt")
    return mallopt is not None and bool(mallopt(_M_ARENA_MAX, 1))


def release_free_memory() -> str | None:
    """Hand the free pages inside glibc's malloc heap back to the system (malloc_trim).

    glibc gives memory back only from the heap's top; what a burst freed below a block still
    in use stays in the process's RSS. A soak saw 3.6 MiB come back this way after a burst
    (bench/soak.py). Returns what RSS did, for the job log; None where the C library is not
    glibc.
    """
    trim = _glibc("malloc_trim")
    if trim is None:
        return None
    before = _rss_kib()
    trim(0)
    after = _rss_kib()
    if before is None or after is None:
        return "trimmed"
    return f"RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB"


def _glibc(name: str) -> Callable[..., int] | None:
    """glibc's function `name` from the process's own symbols; None under another C library."""
    import ctypes

    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def _rss_kib() -> int | None:
    """This process's resident memory (KiB), from /proc; None where there is no /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
