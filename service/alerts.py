"""Operator alerts: one open alert per incident, resolved on recovery; each open and resolve is logged,
stored (`/ops/alerts`) and POSTed to the operators' webhook, signed, retried, never blocking the caller."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
import weakref
from datetime import datetime, timezone

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential
from tortoise.exceptions import IntegrityError

from models.ops import Alert
from service.context import ServiceContext

log = logging.getLogger("llmp.alerts")
ALERT_KINDS = ("provider_failing", "provider_errors", "workers_silent", "scheduler_silent")
# A mass incident (a provider down for thousands of orgs) must not open thousands of sockets to a webhook
# that hangs: at most MAX_PARALLEL POSTs at once per process, and at most MAX_PENDING waiting; beyond
# that an event is logged and dropped (the alert itself is stored and listed either way).
MAX_PARALLEL = 8
MAX_PENDING = 2000
_deliveries: set[asyncio.Task] = set()
_limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def alert_view(alert: Alert) -> dict:
    return {
        "id": str(alert.id), "kind": alert.kind, "status": alert.status, "org": alert.org,
        "provider_id": str(alert.provider_id) if alert.provider_id else None, "message": alert.message,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def incident_key(kind: str, subject: str) -> str:
    return f"{kind}:{subject}"


async def open_alert(ctx: ServiceContext, kind: str, subject: str, message: str, *, org: str | None = None,
                     provider_id=None) -> Alert | None:
    """Open the incident's alert; None when it is already open (one alert per incident)."""
    key = incident_key(kind, subject)
    if await Alert.exists(open_key=key):
        return None
    try:
        alert = await Alert.create(id=uuid.uuid4(), kind=kind, status="open", org=org, provider_id=provider_id,
                                   message=message, open_key=key, opened_at=datetime.now(timezone.utc))
    except IntegrityError:  # opened concurrently by another process
        return None
    log.error("alert opened: %s", json.dumps(alert_view(alert)))
    _notify(ctx, alert, "opened")
    return alert


async def resolve_alert(ctx: ServiceContext, kind: str, subject: str) -> Alert | None:
    key = incident_key(kind, subject)
    alert = await Alert.get_or_none(open_key=key)
    if alert is None:
        return None
    resolved_at = datetime.now(timezone.utc)
    if not await Alert.filter(id=alert.id, open_key=key).update(status="resolved", open_key=None,
                                                                resolved_at=resolved_at):
        return None
    alert.status, alert.resolved_at, alert.open_key = "resolved", resolved_at, None
    log.info("alert resolved: %s", json.dumps(alert_view(alert)))
    _notify(ctx, alert, "resolved")
    return alert


async def list_alerts(status: str | None = None, org: str | None = None, limit: int = 200) -> list[dict]:
    query = Alert.all()
    if status:
        query = query.filter(status=status)
    if org:
        query = query.filter(org=org)
    return [alert_view(a) for a in await query.order_by("-opened_at").limit(limit)]


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _notify(ctx: ServiceContext, alert: Alert, event: str) -> None:
    settings = ctx.settings
    if not settings.alert_webhook_url:
        return
    if len(_deliveries) >= MAX_PENDING:
        log.error("alert webhook backlog full (%d); %s event of alert %s not sent", len(_deliveries), event,
                  alert.id)
        return
    body = json.dumps({**alert_view(alert), "event": event}).encode()
    loop = asyncio.get_running_loop()
    limit = _limits.get(loop)
    if limit is None:
        limit = _limits[loop] = asyncio.Semaphore(MAX_PARALLEL)
    task = loop.create_task(_deliver(settings, body, limit, f"{event} {alert.kind} {alert.id}"))
    _deliveries.add(task)
    task.add_done_callback(_deliveries.discard)


class _DeliveryFailed(Exception):
    pass


class _DeliveryRefused(Exception):
    """A 4xx answer (other than 408 and 429): sending the same body again cannot help."""


async def _deliver(settings, body: bytes, limit: asyncio.Semaphore, what: str) -> None:
    async with limit:
        await _post(settings, body, what)


async def _post(settings, body: bytes, what: str) -> None:
    """POST with retries (about 30 s in all); a webhook that stays down is logged, never raised."""
    headers = {"Content-Type": "application/json", "User-Agent": "llm-providers-alerts"}
    if settings.alert_webhook_secret:
        headers["X-LLMP-Signature"] = sign(settings.alert_webhook_secret.get_secret_value(), body)
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async for attempt in AsyncRetrying(stop=stop_after_attempt(5) | stop_after_delay(30),
                                           wait=wait_exponential(multiplier=0.5, max=8),
                                           retry=retry_if_exception_type((_DeliveryFailed, aiohttp.ClientError,
                                                                          asyncio.TimeoutError)),
                                           reraise=True):
            with attempt:
                async with aiohttp.ClientSession(timeout=timeout) as session:
                    async with session.post(settings.alert_webhook_url, data=body, headers=headers,
                                            allow_redirects=False) as response:
                        if 400 <= response.status < 500 and response.status not in (408, 429):
                            raise _DeliveryRefused(f"webhook answered {response.status}")
                        if response.status >= 300:
                            raise _DeliveryFailed(f"webhook answered {response.status}")
    except Exception as exc:  # noqa: BLE001 - delivery is best effort; the alert is stored either way
        reason = str(exc) if isinstance(exc, (_DeliveryFailed, _DeliveryRefused)) else type(exc).__name__
        log.error("alert webhook delivery failed (%s): %s", what, reason)


async def drain_deliveries(timeout: float = 10) -> None:
    """Let this loop's pending webhook deliveries finish (on shutdown, and in tests)."""
    loop = asyncio.get_running_loop()
    pending = [task for task in _deliveries if task.get_loop() is loop]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
