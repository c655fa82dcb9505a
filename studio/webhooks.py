"""Webhooks: subscriptions, events written as outbox rows, and signed delivery with backoff.

Base layer (imports no app): an app emits an event with ``event_emit(type, data)`` in the
transaction of the change it tells about; the event and one delivery per subscriber are rows
of that transaction, and the "notify" stage sends them after the commit. Signatures follow
the Standard Webhooks specification (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256>``), made with the ``standardwebhooks`` package.

A failed send is tried again after BACKOFF (about 24 hours in all); every request is a row
of the delivery log. Targets resolving to loopback, private, link-local (the cloud metadata
address) or otherwise reserved addresses are refused unless STUDIO_WEBHOOK_ALLOW_PRIVATE;
redirects are never followed (a 3xx is a failed attempt).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from studio import queues
from studio.errors import FieldError, InputError
from studio.models import WebhookAttempt, WebhookDelivery, WebhookEvent, WebhookSubscription

PAYLOAD_VERSION = 1
EVENTS = {
    "campaign.completed": "Every item of a campaign reached a final status.",
    "campaign.paused": "A campaign was paused (data.reason: manual or budget).",
    "item.approved": "An image was approved (automatically or by a reviewer).",
    "item.rejected": "An image was rejected (automatically or by a reviewer).",
    "export.ready": "A catalogue export can be downloaded.",
    "budget.threshold": "A budget reached 80 % or 100 %.",
}
# Seconds to wait after failed attempt n (n = 1, 2, ...): 7 retries over about 20.6 hours,
# so the last one is made within 24 hours of the event.
BACKOFF = (5, 60, 300, 1800, 7200, 21600, 43200)
MAX_ATTEMPTS = len(BACKOFF) + 1
SUBSCRIPTIONS_PER_USER = 50
RESPONSE_READ_LIMIT = 4096


# --- Subscriptions ---------------------------------------------------------------------------


def _secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def target_check(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL webhooks may be sent to; InputError("url") otherwise.

    The host is resolved and every address checked, here and again before each send (where
    STUDIO_WEBHOOK_ALLOW_PRIVATE allows any address, it is not resolved here)."""
    resolve = not settings.STUDIO_WEBHOOK_ALLOW_PRIVATE
    scheme, host, port, _addresses = target_resolve(url, resolve=resolve)
    return scheme, host, port


def target_resolve(url: str, *, resolve: bool = True) -> tuple[str, str, int, list[str]]:
    """(scheme, host, port, addresses): the URL's host resolved once and every address it
    resolves to checked (InputError("url") naming the refused one). A send connects to these
    addresses only, so a name that resolves elsewhere a moment later (DNS rebinding) cannot
    redirect it to a private address. ``resolve=False`` checks the URL only (no addresses)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InputError("url", "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("url", "use an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise InputError("url", "must not carry a user name or password")
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    if not resolve:
        return parts.scheme, host, port, []
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise InputError("url", f"the host {host!r} does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise InputError("url", f"the host {host!r} does not resolve")
    if not settings.STUDIO_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            if _address_refused(address):
                raise InputError(
                    "url",
                    f"{host} resolves to {address}, a loopback, private, link-local or "
                    "reserved address; webhooks go to public addresses only",
                )
    return parts.scheme, host, port, addresses


def _events_check(events) -> list[str]:
    if isinstance(events, str):
        events = [part.strip() for part in events.split(",")]
    events = [e for e in dict.fromkeys(events or []) if e]
    if not events:
        raise InputError("events", f"choose at least one of {', '.join(EVENTS)}")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise InputError("events", f"{', '.join(unknown)}: not an event; use {', '.join(EVENTS)}")
    return events


def subscription_create(
    *, user, url: str, events, description: str = "", active: bool = True
) -> WebhookSubscription:
    """A subscription with a new secret (shown to its owner once). InputError names the field."""
    errors = []
    url = (url or "").strip()
    if len(url) > 500:
        errors.append(FieldError("url", "use at most 500 characters"))
    else:
        try:
            target_check(url)
        except InputError as exc:
            errors += exc.errors
    try:
        events = _events_check(events)
    except InputError as exc:
        errors += exc.errors
    description = (description or "").strip()
    if len(description) > 200:
        errors.append(FieldError("description", "use at most 200 characters"))
    if WebhookSubscription.objects.filter(user=user).count() >= SUBSCRIPTIONS_PER_USER:
        errors.append(FieldError("", f"at most {SUBSCRIPTIONS_PER_USER} subscriptions each"))
    if errors:
        raise InputError(errors)
    return WebhookSubscription.objects.create(
        user=user,
        url=url,
        events=events,
        description=description,
        active=bool(active),
        secret=_secret_new(),
    )


def subscription_update(
    *, subscription: WebhookSubscription, url=None, events=None, active=None, description=None
) -> WebhookSubscription:
    """Change what is given (None: keep it). InputError names the field."""
    fields = []
    if url is not None:
        url = url.strip()
        if len(url) > 500:
            raise InputError("url", "use at most 500 characters")
        target_check(url)
        subscription.url = url
        fields.append("url")
    if events is not None:
        subscription.events = _events_check(events)
        fields.append("events")
    if active is not None:
        subscription.active = bool(active)
        fields.append("active")
    if description is not None:
        if len(description.strip()) > 200:
            raise InputError("description", "use at most 200 characters")
        subscription.description = description.strip()
        fields.append("description")
    if fields:
        subscription.save(update_fields=fields)
    return subscription


def subscription_secret_rotate(*, subscription: WebhookSubscription) -> str:
    subscription.secret = _secret_new()
    subscription.save(update_fields=["secret"])
    return subscription.secret


# --- Events ----------------------------------------------------------------------------------


def event_emit(type: str, data: dict) -> WebhookEvent | None:
    """Record an event and a delivery for every active subscriber, in the caller's
    transaction; they are sent after it commits (nothing is sent if it rolls back).

    Returns None (and writes nothing) when nobody subscribes to ``type``."""
    if type not in EVENTS:
        raise ValueError(f"unknown webhook event {type!r}")
    subscribers = [
        pk
        for pk, events in WebhookSubscription.objects.filter(active=True).values_list(
            "pk", "events"
        )
        if type in events
    ]
    if not subscribers:
        return None
    now = timezone.now()
    with transaction.atomic():
        event = WebhookEvent.objects.create(
            type=type,
            payload={
                "type": type,
                "timestamp": now.isoformat().replace("+00:00", "Z"),
                "version": PAYLOAD_VERSION,
                "data": data,
            },
        )
        deliveries = WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(subscription_id=pk, event=event) for pk in subscribers]
        )
        queues.enqueue("notify", [d.pk for d in deliveries])
    return event


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """ "Send again": a new delivery of the same event to the same subscription, now."""
    with transaction.atomic():
        again = WebhookDelivery.objects.create(
            subscription_id=delivery.subscription_id, event_id=delivery.event_id
        )
        queues.enqueue("notify", [again.pk])
    return again


# --- Sending ---------------------------------------------------------------------------------


def sign(*, secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks v1)."""
    from standardwebhooks.webhooks import Webhook

    return Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, tz=UTC), body)


class _Refused(Exception):
    pass


def _connect_pinned(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first of the checked addresses that answers (no resolution:
    they are IP literals)."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to the name's checked addresses; the Host header is still the name."""

    def __init__(self, host: str, port: int, *, addresses: list[str], **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect_pinned(self.addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the name's checked addresses; SNI, the Host header and the certificate check
    are for the name."""

    def __init__(self, host: str, port: int, *, addresses: list[str], **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.addresses = addresses

    def connect(self) -> None:
        sock = _connect_pinned(self.addresses, self.port, self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _tls_context() -> ssl.SSLContext:
    """The certificate check for HTTPS targets: the system's trusted roots, hostname checked."""
    return ssl.create_default_context()


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST once, never following a redirect; returns the status code.

    The host is resolved once (target_resolve) and the connection made to an address that
    was checked, never to a second resolution's."""
    scheme, host, port, addresses = target_resolve(url)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = settings.STUDIO_WEBHOOK_TIMEOUT_SECONDS
    if scheme == "https":
        connection: http.client.HTTPConnection = _PinnedHTTPSConnection(
            host, port, addresses=addresses, timeout=timeout, context=_tls_context()
        )
    else:
        connection = _PinnedHTTPConnection(host, port, addresses=addresses, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(RESPONSE_READ_LIMIT)
        return response.status
    finally:
        connection.close()


def delivery_attempt(*, delivery_id) -> WebhookDelivery | None:
    """Send one delivery if it is due and nobody else is sending it; record the attempt and
    schedule the next one on failure. Returns the delivery, or None if it was not ours."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.STUDIO_WEBHOOK_TIMEOUT_SECONDS + 30)
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
        .exclude(next_attempt_at__gt=now)
        .exclude(lease_until__gt=now)
        .update(lease_until=lease)
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("subscription", "event").get(pk=delivery_id)
    subscription, event = delivery.subscription, delivery.event
    number = delivery.attempts + 1
    body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Studio-Webhooks/1",
        "webhook-id": event.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            secret=subscription.secret,
            message_id=event.message_id,
            timestamp=timestamp,
            body=body,
        ),
    }
    status_code, error = None, ""
    started = time.monotonic()
    if not subscription.active:
        error = "the subscription is inactive"
    else:
        try:
            status_code = _post(subscription.url, body.encode("utf-8"), headers)
        except InputError as exc:
            error = f"refused: {exc.errors[0].message}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
    latency = int((time.monotonic() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not ok:
        error = f"HTTP {status_code}" + (
            " (redirects are not followed)" if 300 <= status_code < 400 else ""
        )
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=number,
            status_code=status_code,
            latency_ms=latency,
            error=error[:500],
        )
        update = {
            "attempts": number,
            "lease_until": None,
            "last_status_code": status_code,
            "last_error": error[:500],
        }
        delay = 0
        if ok:
            update |= {"status": WebhookDelivery.Status.SUCCEEDED, "delivered_at": timezone.now()}
        elif number >= MAX_ATTEMPTS or not subscription.active:
            update |= {"status": WebhookDelivery.Status.FAILED, "next_attempt_at": None}
        else:
            delay = BACKOFF[number - 1]
            update["next_attempt_at"] = timezone.now() + timedelta(seconds=delay)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**update)
        if delay:
            queues.enqueue("notify", [delivery.pk], delay=delay)
    delivery.refresh_from_db()
    return delivery


@queues.fresh_connections
def deliveries_send(ids) -> int:
    """The "notify" job: send each delivery named; returns how many were attempted."""
    return sum(delivery_attempt(delivery_id=pk) is not None for pk in ids)


def webhooks_reconcile() -> dict[str, int]:
    """Deliveries due for over a minute with no job (Redis lost it) are enqueued again."""
    stale = timezone.now() - timedelta(seconds=60)
    ids = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        .exclude(next_attempt_at__gt=stale)
        .exclude(lease_until__gt=timezone.now())
        .filter(created_at__lt=stale)
        .values_list("pk", flat=True)[:1000]
    )
    if ids:
        with transaction.atomic():
            queues.enqueue("notify", ids)
    return {"webhook_deliveries": len(ids)}
