"""Keeps two optional parts of libraries, which shopbell never uses, out of its processes."""

from __future__ import annotations

import sys

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
