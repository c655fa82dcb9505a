"""Webhook subscriptions and their delivery log over the API (the caller's own only)."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.http import Http404
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict

from studio import webhooks
from studio.api.core import IDEMPOTENCY_OPENAPI, idempotent, keyset_page, require, scoped
from studio.models import WebhookDelivery, WebhookSubscription
from studio.roles import ADMIN, has_role

router = Router(tags=["webhooks"])
# Subscribing reveals what campaigns:read reveals (ids and statuses of campaigns and items).
SCOPE = "campaigns:read"


class SubscriptionIn(Schema):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., max_length=500)
    events: list[str] = Field(..., min_length=1, max_length=20)
    description: str = Field("", max_length=200)
    active: bool = True


class SubscriptionPatch(Schema):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=500)
    events: list[str] | None = Field(None, min_length=1, max_length=20)
    description: str | None = Field(None, max_length=200)
    active: bool | None = None


class SubscriptionOut(Schema):
    id: str
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: datetime
    secret: str | None = Field(None, description="Only in the answer that creates it.")


class SubscriptionPage(Schema):
    items: list[SubscriptionOut]
    next_cursor: str | None


class AttemptOut(Schema):
    number: int
    status_code: int | None
    latency_ms: int | None
    error: str
    at: datetime


class DeliveryOut(Schema):
    id: str
    event_id: str
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None
    log: list[AttemptOut]


class DeliveryPage(Schema):
    items: list[DeliveryOut]
    next_cursor: str | None


class EventsOut(Schema):
    events: dict[str, str]


def _subscription(s: WebhookSubscription, *, secret: bool = False) -> dict:
    return {
        "id": str(s.pk),
        "url": s.url,
        "events": list(s.events),
        "description": s.description,
        "active": s.active,
        "created_at": s.created_at,
        "secret": s.secret if secret else None,
    }


def _delivery(d: WebhookDelivery) -> dict:
    return {
        "id": str(d.pk),
        "event_id": d.event.message_id,
        "event": d.event.type,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "delivered_at": d.delivered_at,
        "log": [
            {
                "number": a.number,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "at": a.created_at,
            }
            for a in d.log.all()
        ],
    }


def _own(request, subscription_id) -> WebhookSubscription:
    caller = require(request, SCOPE)
    found = WebhookSubscription.objects.filter(pk=subscription_id)
    if not has_role(caller.user, ADMIN):
        found = found.filter(user=caller.user)
    subscription = found.first()
    if subscription is None:
        raise Http404
    return subscription


@router.get(
    "/webhooks/events",
    response=EventsOut,
    summary="The events one may subscribe to",
    auth=scoped(SCOPE),
)
def events(request):
    require(request, SCOPE)
    return {"events": webhooks.EVENTS}


@router.get(
    "/webhooks", response=SubscriptionPage, summary="Your webhook subscriptions", auth=scoped(SCOPE)
)
def subscriptions_list(request, cursor: str | None = None, limit: int = Query(50, ge=1, le=200)):
    caller = require(request, SCOPE)
    rows, nxt = keyset_page(
        WebhookSubscription.objects.filter(user=caller.user),
        order=("-created_at", "-pk"),
        cursor=cursor,
        limit=limit,
    )
    return {"items": [_subscription(s) for s in rows], "next_cursor": nxt}


@router.post(
    "/webhooks",
    response={201: SubscriptionOut},
    summary="Subscribe (the answer shows the signing secret, once)",
    auth=scoped(SCOPE),
    openapi_extra=IDEMPOTENCY_OPENAPI,
)
@idempotent
def subscription_create(request, payload: SubscriptionIn):
    caller = require(request, SCOPE)
    subscription = webhooks.subscription_create(user=caller.user, **payload.model_dump())
    return 201, _subscription(subscription, secret=True)


@router.get("/webhooks/{uuid:subscription_id}", response=SubscriptionOut, auth=scoped(SCOPE))
def subscription_get(request, subscription_id: uuid.UUID):
    return _subscription(_own(request, subscription_id))


@router.patch("/webhooks/{uuid:subscription_id}", response=SubscriptionOut, auth=scoped(SCOPE))
def subscription_update(request, subscription_id: uuid.UUID, payload: SubscriptionPatch):
    subscription = _own(request, subscription_id)
    webhooks.subscription_update(subscription=subscription, **payload.model_dump())
    return _subscription(subscription)


@router.delete("/webhooks/{uuid:subscription_id}", response={204: None}, auth=scoped(SCOPE))
def subscription_delete(request, subscription_id: uuid.UUID):
    _own(request, subscription_id).delete()
    return Status(204, None)


@router.get(
    "/webhooks/{uuid:subscription_id}/deliveries",
    response=DeliveryPage,
    summary="The delivery log: each event, its attempts, status codes and latency",
    auth=scoped(SCOPE),
)
def deliveries_list(
    request,
    subscription_id: uuid.UUID,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=200),
):
    subscription = _own(request, subscription_id)
    rows, nxt = keyset_page(
        subscription.deliveries.select_related("event").prefetch_related("log"),
        order=("-created_at", "-pk"),
        cursor=cursor,
        limit=limit,
    )
    return {"items": [_delivery(d) for d in rows], "next_cursor": nxt}


@router.post(
    "/webhooks/{uuid:subscription_id}/deliveries/{uuid:delivery_id}/redeliver",
    response={202: DeliveryOut},
    summary="Send an event again",
    auth=scoped(SCOPE),
)
def redeliver(request, subscription_id: uuid.UUID, delivery_id: uuid.UUID):
    subscription = _own(request, subscription_id)
    delivery = subscription.deliveries.filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404
    again = webhooks.delivery_redeliver(delivery=delivery)
    again = WebhookDelivery.objects.select_related("event").get(pk=again.pk)
    return Status(202, _delivery(again))
