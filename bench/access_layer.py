"""What the access layer (daemon/api/auth.py's AccessMiddleware) costs a request, alone.

Calls the middleware in-process, in front of an app that does nothing, for a seed path near
the front of the route list and for routes at its end, and prints microseconds a request:
the first walk of the routes for a new method and path, and the remembered one after.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from daemon.api.app import _door, create_app  # noqa: E402
from daemon.api.auth import AccessMiddleware, _match  # noqa: E402
from daemon.api.context import ApiContext  # noqa: E402
from daemon.runtime.clock import ManualClock  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
N = 20_000


class _Db:
    """Stands in for the database: the middleware never reaches it."""

    async def ping(self) -> bool:
        return True


async def _nothing(*args: object) -> None:
    return None


def _scope(method: str, path: str) -> dict[str, object]:
    headers = [
        (b"host", b"127.0.0.1:8765"),
        (b"authorization", f"Bearer {TOKEN}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", b"90"),
    ]
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8765),
        "scheme": "http",
        "http_version": "1.1",
    }


async def main() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    ctx = ApiContext(
        db=_Db(),  # type: ignore[arg-type]
        clock=clock,
        api_token=TOKEN,
        version="bench",
        started_at=clock.now(),
        started_monotonic=0.0,
        max_body_bytes=1_000_000,
    )
    app = create_app(ctx)
    door = AccessMiddleware(_nothing, router=app.router, door=_door(ctx))
    print(f"{len(app.router.routes)} routes; {N:,} calls each; microseconds a request")
    for method, path in (("POST", "/smss"), ("GET", "/api/v1/stats"), ("GET", "/no/such/path")):
        start = time.perf_counter()
        for _ in range(N):
            _match(app.router.routes, _scope(method, path))
        walk = (time.perf_counter() - start) / N * 1e6
        start = time.perf_counter()
        for _ in range(N):
            await door(_scope(method, path), _nothing, _nothing)  # type: ignore[arg-type]
        whole = (time.perf_counter() - start) / N * 1e6
        print(f"  {method} {path:<16} first walk {walk:6.1f}   whole door, remembered {whole:5.1f}")


if __name__ == "__main__":
    asyncio.run(main())
