"""Delivering the outbox: claim due rows, POST them signed, retry on the schedule.

One :class:`Dispatcher` per worker process holds the one shared HTTP client. Each pass
of the worker loop claims due deliveries with a conditional UPDATE (so each is sent by
one process at a time, however many run) and sends them in tasks of their own: a slow or
dead endpoint holds at most ``PER_ENDPOINT`` of them and never the worker loop, the
recordings, or other endpoints. The body is built when it is sent (see the README).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook
from tortoise.expressions import Q

from web import netguard
from web.models import Call, DeliveryStatus, Recording, WebhookDelivery, WebhookEndpoint
from web.observability import (
    WEBHOOK_ATTEMPTS,
    WEBHOOK_FAILURES,
    WEBHOOK_OLDEST_PENDING,
)
from web.services.calls import call_to_dict
from web.settings import Settings
from web.webhooks.endpoints import signing_secrets

log = logging.getLogger("talkturo.webhooks")

# Waits after each failed attempt: ~5 s, 30 s, 2 min, 10 min, 1 h, then every 3 h for 24 h.
RETRY_DELAYS_S: tuple[float, ...] = (5, 30, 120, 600, 3600, *([3 * 3600] * 8))
# In-flight deliveries per process: in all, and to any one endpoint.
MAX_IN_FLIGHT = 32
PER_ENDPOINT = 2
USER_AGENT = "Talkturo-Webhooks/1"


def retry_delay(attempts: int, scale: float = 1.0) -> float | None:
    """Seconds to wait after failed attempt number ``attempts``; None: give up (failed)."""
    if attempts < 1 or attempts > len(RETRY_DELAYS_S):
        return None
    return RETRY_DELAYS_S[attempts - 1] * scale


def body_of(delivery: WebhookDelivery, call: Call | None, rec: Recording | None, key: str) -> bytes:
    """``{"type", "timestamp", "data": {"call": ...}}`` with the call as the API shows it now."""
    payload = {
        "type": delivery.type,
        "timestamp": delivery.occurred_at.astimezone(UTC).isoformat(),
        "data": {"call": call_to_dict(call, rec, key) if call is not None else None},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def signature_header(secrets_: list[str], event_id: str, when: datetime, body: bytes) -> str:
    """``v1,<sig>`` per secret, space separated (Standard Webhooks; several during a roll)."""
    text = body.decode()
    return " ".join(Webhook(s).sign(event_id, when, text) for s in secrets_)


class Dispatcher:
    """Sends due deliveries for one process, with one shared HTTP client."""

    def __init__(self, settings: Settings, *, verify: ssl.SSLContext | bool = True) -> None:
        """``verify``: how TLS certificates are checked (the system's CAs by default)."""
        self.settings = settings
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        limits = settings.endpoints
        self.timeout_s = limits.webhook_timeout_s
        # A claim outlives any attempt (resolve + send), so no other process takes it early.
        self.lease = timedelta(seconds=2 * self.timeout_s + 5)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s),
            follow_redirects=False,
            trust_env=False,
            verify=verify,
            limits=httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=8),
            headers={"user-agent": USER_AGENT},
        )
        self.tasks: set[asyncio.Task[None]] = set()
        self.in_flight: Counter[uuid.UUID] = Counter()

    async def close(self) -> None:
        """Stop in-flight sends (their claims expire and another pass takes them) and close."""
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()

    async def drain(self) -> None:
        """Wait for every delivery in flight (tests and shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def pass_once(self) -> int:
        """Claim what is due (within the limits) and start sending it; returns how many."""
        await self._observe_backlog()
        free = MAX_IN_FLIGHT - len(self.tasks)
        if free <= 0:
            return 0
        now = datetime.now(UTC)
        busy = [e for e, n in self.in_flight.items() if n >= PER_ENDPOINT]
        candidates = (
            await WebhookDelivery.filter(
                Q(claimed_until=None) | Q(claimed_until__lt=now),
                status=DeliveryStatus.PENDING,
                next_attempt_at__lte=now,
                endpoint__enabled=True,
            )
            .exclude(endpoint_id__in=busy)
            .order_by("next_attempt_at")
            .limit(free * 2)
            .values("id", "endpoint_id")
        )
        started = 0
        for row in candidates:
            endpoint_id = row["endpoint_id"]
            if started >= free or self.in_flight[endpoint_id] >= PER_ENDPOINT:
                continue
            if not await self._claim(row["id"], now):
                continue
            self.in_flight[endpoint_id] += 1
            task = asyncio.create_task(self._deliver(row["id"], endpoint_id))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            started += 1
        return started

    async def _claim(self, delivery_id: uuid.UUID, now: datetime) -> bool:
        taken = await WebhookDelivery.filter(
            Q(claimed_until=None) | Q(claimed_until__lt=now),
            id=delivery_id,
            status=DeliveryStatus.PENDING,
        ).update(claimed_by=self.worker, claimed_until=now + self.lease)
        return bool(taken)

    async def _observe_backlog(self) -> None:
        oldest = (
            # A disabled endpoint's backlog waits on purpose: it is not a delivery problem.
            await WebhookDelivery.filter(status=DeliveryStatus.PENDING, endpoint__enabled=True)
            .order_by("created_at")
            .limit(1)
            .values_list("created_at", flat=True)
        )
        age = 0.0
        if oldest and isinstance(oldest[0], datetime):
            age = max(0.0, (datetime.now(UTC) - oldest[0]).total_seconds())
        WEBHOOK_OLDEST_PENDING.set(age)

    async def _deliver(self, delivery_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
        try:
            await self._attempt(delivery_id)
        except Exception:
            log.exception("webhook delivery %s broke; its claim will expire", delivery_id)
        finally:
            self.in_flight[endpoint_id] -= 1
            if self.in_flight[endpoint_id] <= 0:
                del self.in_flight[endpoint_id]

    async def _attempt(self, delivery_id: uuid.UUID) -> None:
        delivery = await WebhookDelivery.get_or_none(id=delivery_id, claimed_by=self.worker)
        if delivery is None:
            return
        endpoint = await WebhookEndpoint.get(id=delivery.endpoint_id)  # type: ignore[attr-defined]
        call = await Call.get_or_none(id=delivery.call_id)
        rec = await Recording.get_or_none(call_id=delivery.call_id) if call else None
        body = body_of(delivery, call, rec, self.settings.secret_key)
        sent_at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature_header(
                signing_secrets(endpoint, self.settings.secret_key, sent_at),
                delivery.event_id,
                sent_at,
                body,
            ),
        }
        code: int | None = None
        error = ""
        try:
            async with asyncio.timeout(self.timeout_s):
                code = await self._post(endpoint.url, body, headers)
            if not 200 <= code < 300:
                error = f"the endpoint answered HTTP {code}"
        except netguard.EndpointRefused as exc:
            error = exc.detail
        except TimeoutError:
            error = f"no answer within {self.timeout_s:g} s"
        except (httpx.HTTPError, OSError):
            error = "could not connect to the endpoint"
        await self._record(delivery, code, error)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST to the checked addresses of ``url``'s host (never a fresh lookup); no redirects."""
        checked = await netguard.check_url(
            url,
            field="url",
            allow_private=self.settings.endpoints.allow_private,
            timeout_s=self.timeout_s,
        )
        extensions: dict[str, Any] = {}
        if checked.scheme == "https":
            # TLS still checks the certificate against the URL's own host name.
            extensions["sni_hostname"] = checked.host
        last: Exception | None = None
        for address in checked.addresses:
            request = self.client.build_request(
                "POST",
                netguard.pinned_url(checked, address),
                content=body,
                headers={**headers, "host": netguard.host_header(checked)},
                extensions=extensions,
            )
            try:
                response = await self.client.send(request, stream=True, follow_redirects=False)
            except httpx.ConnectError as exc:
                last = exc
                continue
            await response.aclose()
            return response.status_code
        raise last or httpx.ConnectError("no address to connect to")

    async def _record(self, delivery: WebhookDelivery, code: int | None, error: str) -> None:
        now = datetime.now(UTC)
        attempts = delivery.attempts + 1
        mine = WebhookDelivery.filter(id=delivery.id, claimed_by=self.worker)
        common: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": code,
            "last_error": error[:1000],
            "claimed_by": None,
            "claimed_until": None,
        }
        if not error:
            WEBHOOK_ATTEMPTS.labels("delivered").inc()
            await mine.update(status=DeliveryStatus.DELIVERED, delivered_at=now, **common)
            return
        WEBHOOK_FAILURES.inc()
        delay = retry_delay(attempts, self.settings.endpoints.webhook_retry_scale)
        if delay is None:
            WEBHOOK_ATTEMPTS.labels("failed").inc()
            await mine.update(status=DeliveryStatus.FAILED, next_attempt_at=None, **common)
            log.warning(
                "webhook %s to endpoint %s failed for good: %s",
                delivery.event_id,
                delivery.endpoint_id,  # type: ignore[attr-defined]
                error,
            )
            return
        WEBHOOK_ATTEMPTS.labels("retrying").inc()
        await mine.update(next_attempt_at=now + timedelta(seconds=delay), **common)


async def worker_job(state: Any) -> int:
    """The worker loop's job: one dispatcher per process state, one pass."""
    dispatcher: Dispatcher | None = getattr(state, "webhook_dispatcher", None)
    if dispatcher is None:
        dispatcher = Dispatcher(state.settings)
        state.webhook_dispatcher = dispatcher
    return await dispatcher.pass_once()


async def close_worker(state: Any) -> None:
    """Close the process's dispatcher, if it made one."""
    dispatcher: Dispatcher | None = getattr(state, "webhook_dispatcher", None)
    if dispatcher is not None:
        state.webhook_dispatcher = None
        await dispatcher.close()


def register(jobs: Any) -> None:
    """Add webhook delivery to the worker loop."""
    jobs.add("webhooks", worker_job)
    jobs.add_closer(close_worker)
