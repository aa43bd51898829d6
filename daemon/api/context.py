"""What the HTTP API needs from the daemon, injected once when the app is built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

if TYPE_CHECKING:
    from daemon.services.backoffice.service import BackOffice
    from daemon.services.inbound import InboundService
    from daemon.services.metrics import Metrics
    from daemon.services.otp.service import OtpService
    from daemon.services.outbox.service import Outbox
    from daemon.services.push import PushService
    from daemon.services.receipts import Receipts
    from daemon.services.tgtg.watcher import Watcher

from daemon.api.clients import ClientResolver, networks
from daemon.config import Settings
from daemon.runtime.clock import Clock
from storage.database import Database

# A health source answers "how is this part doing?", e.g. {"state": "ok", "detail": "..."}.
# "state" is one of "ok", "degraded", "down"; other keys are shown as they are.
HealthSource = Callable[[], Awaitable[dict[str, Any]]]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass
class ApiContext:
    """Everything routes and middleware use; built by the daemon's lifecycle, never by routes."""

    db: Database
    clock: Clock
    # repr=False: a logged or printed context must never show the token.
    api_token: str = field(repr=False)
    version: str
    started_at: datetime
    started_monotonic: float
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    cors_origins: tuple[str, ...] = ()
    # Each component of /api/health by name (sms, push, email, tgtg, owner), asked at each call.
    health_sources: dict[str, HealthSource] = field(default_factory=dict)
    # The daemon's whole configuration (routes read their own sections) and its services.
    settings: Settings = field(default_factory=Settings)
    outbox: Outbox | None = None
    push: PushService | None = None
    otp: OtpService | None = None
    tgtg: Watcher | None = None
    backoffice: BackOffice | None = None
    # Only when [metrics] enabled: then GET /metrics exists.
    metrics: Metrics | None = None
    # The one inbound entry (the modem's too); Twilio's webhook hands its SMS here.
    inbound: InboundService | None = None
    # The one receipts entry (the modem's reports too); Twilio's status callback hands them here.
    receipts: Receipts | None = None
    # Each scheduled job's next run; set by the lifecycle once the scheduler (built after
    # the API) has started, so None until then.
    jobs: Callable[[], dict[str, datetime | None]] | None = None
    # Who is calling (X-Forwarded-For believed from [api] trusted_proxies); built from settings.
    clients: ClientResolver = field(init=False)

    def __post_init__(self) -> None:
        # An empty token would make "Authorization: Bearer " a valid login.
        if not self.api_token.strip():
            raise ValueError("api_token is empty: the API would accept an empty bearer token")
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {self.max_body_bytes}")
        if self.started_at.tzinfo is None:
            raise ValueError("started_at must be timezone-aware (UTC)")
        self.cors_origins = tuple(self.cors_origins)
        self.clients = ClientResolver(networks(self.settings.api.trusted_proxies))


async def get_ctx(request: Request) -> ApiContext:
    """FastAPI dependency: the context stored on the app by `create_app`."""
    ctx: ApiContext = request.app.state.ctx
    return ctx
