"""Webhooks: subscriptions, events from the owners' services, Standard Webhooks signatures,
retries with backoff against a real local HTTP server, refused targets, no redirects."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from generation.services import campaign_pause
from studio import webhooks
from studio.errors import InputError
from studio.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from tests.api.conftest import assert_problem
from tests.conftest import route_items


class Receiver:
    """A local HTTP server answering with the given status codes in turn (then 200)."""

    def __init__(self, statuses=(), location: str = "") -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def allow_loopback(settings):
    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = True


def _due_now(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_a_delivery_is_retried_with_backoff_until_the_server_accepts_it(
    creative, allow_loopback, handoffs, django_capture_on_commit_callbacks
):
    with Receiver(statuses=[500, 503]) as receiver:
        subscription = webhooks.subscription_create(
            user=creative, url=receiver.url, events=["campaign.completed"]
        )
        with django_capture_on_commit_callbacks(execute=True):
            event = webhooks.event_emit("campaign.completed", {"campaign": {"id": "c1"}})
        (delivery,) = event.deliveries.all()
        assert handoffs == [("studio.webhooks.deliveries_send", [str(delivery.pk)])]

        with django_capture_on_commit_callbacks(execute=True):
            first = webhooks.delivery_attempt(delivery_id=delivery.pk)
        assert first.status == "pending" and first.attempts == 1
        assert first.last_status_code == 500
        assert webhooks.delivery_attempt(delivery_id=delivery.pk) is None  # not due yet

        _due_now(delivery)
        second = webhooks.delivery_attempt(delivery_id=delivery.pk)
        assert second.attempts == 2 and second.last_status_code == 503
        gap_1 = (first.next_attempt_at - timezone.now()).total_seconds()
        gap_2 = (second.next_attempt_at - timezone.now()).total_seconds()
        assert gap_1 <= webhooks.BACKOFF[0] < gap_2 <= webhooks.BACKOFF[1]

        _due_now(delivery)
        third = webhooks.delivery_attempt(delivery_id=delivery.pk)

    assert third.status == "succeeded" and third.attempts == 3
    assert [a.status_code for a in WebhookAttempt.objects.order_by("number")] == [500, 503, 200]
    assert all(a.latency_ms is not None for a in WebhookAttempt.objects.all())
    assert len(receiver.received) == 3
    headers, body = receiver.received[-1]
    payload = Webhook(subscription.secret).verify(body, headers)
    assert payload["type"] == "campaign.completed"
    assert payload["data"] == {"campaign": {"id": "c1"}}
    assert headers["webhook-id"] == event.message_id


def test_the_retries_span_about_a_day_and_then_the_delivery_fails(
    creative, allow_loopback, handoffs
):
    assert 20 * 3600 <= sum(webhooks.BACKOFF) <= 24 * 3600
    with Receiver(statuses=[500] * webhooks.MAX_ATTEMPTS) as receiver:
        webhooks.subscription_create(user=creative, url=receiver.url, events=["item.approved"])
        event = webhooks.event_emit("item.approved", {"item": {"id": "i"}})
        (delivery,) = event.deliveries.all()
        for _ in range(webhooks.MAX_ATTEMPTS):
            _due_now(delivery)
            result = webhooks.delivery_attempt(delivery_id=delivery.pk)

    assert result.status == "failed" and result.attempts == webhooks.MAX_ATTEMPTS


def test_a_signature_made_with_another_secret_does_not_verify(creative, allow_loopback, handoffs):
    with Receiver() as receiver:
        webhooks.subscription_create(user=creative, url=receiver.url, events=["item.rejected"])
        event = webhooks.event_emit("item.rejected", {"item": {"id": "i"}})
        webhooks.delivery_attempt(delivery_id=event.deliveries.get().pk)

    headers, body = receiver.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()).verify(
            body, headers
        )
    with pytest.raises(WebhookVerificationError):
        Webhook(event.deliveries.get().subscription.secret).verify(body + b" ", headers)


def test_a_redirect_is_not_followed_and_counts_as_a_failure(creative, allow_loopback, handoffs):
    with Receiver(statuses=[302], location="http://169.254.169.254/") as receiver:
        webhooks.subscription_create(user=creative, url=receiver.url, events=["item.approved"])
        event = webhooks.event_emit("item.approved", {"item": {"id": "i"}})
        delivery = webhooks.delivery_attempt(delivery_id=event.deliveries.get().pk)

    assert len(receiver.received) == 1
    assert delivery.status == "pending"
    assert "redirects are not followed" in delivery.last_error


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "not a url",
    ],
)
def test_private_loopback_metadata_and_odd_targets_are_refused(creative, url):
    with pytest.raises(InputError) as caught:
        webhooks.subscription_create(user=creative, url=url, events=["item.approved"])
    assert caught.value.fields == {"url"}


def test_a_target_that_turned_private_since_is_refused_at_send_time(creative, settings, handoffs):
    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = True
    webhooks.subscription_create(
        user=creative, url="http://127.0.0.1:9/x", events=["item.approved"]
    )
    event = webhooks.event_emit("item.approved", {"item": {"id": "i"}})
    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = False

    delivery = webhooks.delivery_attempt(delivery_id=event.deliveries.get().pk)

    assert delivery.last_error.startswith("refused:")


def test_unknown_events_are_refused(creative, allow_loopback):
    with pytest.raises(InputError) as caught:
        webhooks.subscription_create(user=creative, url="http://127.0.0.1/x", events=["item.eaten"])
    assert caught.value.fields == {"events"}


def test_nothing_is_written_when_nobody_listens(db):
    assert webhooks.event_emit("campaign.paused", {"campaign": {}}) is None
    assert not WebhookEvent.objects.exists()


def test_pausing_a_campaign_emits_campaign_paused_with_the_reason(
    creative, campaign, allow_loopback, handoffs
):
    subscription = webhooks.subscription_create(
        user=creative, url="http://127.0.0.1:9/x", events=["campaign.paused"]
    )

    campaign_pause(campaign=campaign)

    event = WebhookEvent.objects.get(type="campaign.paused")
    assert event.payload["data"]["campaign"] == {
        "id": str(campaign.pk),
        "status": "paused",
        "pause_reason": "manual",
        "pause_note": "",
    }
    assert event.deliveries.get().subscription == subscription


def test_items_approved_and_rejected_and_a_completed_campaign_emit_events(
    creative, campaign, allow_loopback, handoffs
):
    webhooks.subscription_create(
        user=creative,
        url="http://127.0.0.1:9/x",
        events=["item.approved", "item.rejected", "campaign.completed"],
    )
    (approved,) = route_items(campaign, to="approved", count=1)
    rejected = route_items(campaign, to="rejected", count=campaign.items.count() - 1)

    types = list(WebhookEvent.objects.values_list("type", flat=True))
    assert types.count("item.approved") == 1
    assert types.count("item.rejected") == len(rejected)
    assert types.count("campaign.completed") == 1
    approved_event = WebhookEvent.objects.get(type="item.approved")
    assert approved_event.payload["data"]["item"]["id"] == str(approved.pk)
    assert approved_event.payload["version"] == 1


def test_an_event_in_a_rolled_back_transaction_is_never_sent(
    creative, allow_loopback, handoffs, django_capture_on_commit_callbacks
):
    from django.db import transaction

    webhooks.subscription_create(
        user=creative, url="http://127.0.0.1:9/x", events=["item.approved"]
    )
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            webhooks.event_emit("item.approved", {"item": {}})
            raise RuntimeError

    assert not WebhookEvent.objects.exists()
    assert handoffs == []


def test_send_again_makes_a_new_delivery_of_the_same_event(creative, allow_loopback, handoffs):
    with Receiver() as receiver:
        webhooks.subscription_create(user=creative, url=receiver.url, events=["item.approved"])
        event = webhooks.event_emit("item.approved", {"item": {"id": "i"}})
        first = webhooks.delivery_attempt(delivery_id=event.deliveries.get().pk)
        again = webhooks.delivery_redeliver(delivery=first)
        webhooks.deliveries_send([str(again.pk)])

    assert [h["webhook-id"] for h, _ in receiver.received] == [event.message_id] * 2
    assert WebhookDelivery.objects.get(pk=again.pk).status == "succeeded"


def test_the_reconciler_enqueues_deliveries_whose_job_was_lost(
    creative, allow_loopback, handoffs, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    webhooks.subscription_create(
        user=creative, url="http://127.0.0.1:9/x", events=["item.approved"]
    )
    event = webhooks.event_emit("item.approved", {"item": {}})
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    handoffs.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.webhooks_reconcile() == {"webhook_deliveries": 1}
    assert handoffs == [("studio.webhooks.deliveries_send", [str(event.deliveries.get().pk)])]


# --- The API ---------------------------------------------------------------------------------


def test_a_subscription_is_made_over_the_api_and_its_secret_shown_once(
    creative_api, allow_loopback
):
    created = creative_api.post(
        "/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["item.approved"]}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_")

    listed = creative_api.get("/webhooks").json()["items"]
    assert [s["id"] for s in listed] == [body["id"]]
    assert listed[0]["secret"] is None
    assert creative_api.get(f"/webhooks/{body['id']}").json()["secret"] is None

    patched = creative_api.patch(f"/webhooks/{body['id']}", {"active": False}).json()
    assert patched["active"] is False
    assert creative_api.delete(f"/webhooks/{body['id']}").status_code == 204
    assert_problem(creative_api.get(f"/webhooks/{body['id']}"), 404)


def test_a_refused_target_is_a_field_error_over_the_api(creative_api, db):
    body = assert_problem(
        creative_api.post("/webhooks", {"url": "http://10.0.0.1/x", "events": ["item.approved"]}),
        422,
    )
    assert body["errors"][0]["loc"] == ["body", "url"]


def test_another_users_subscription_is_a_404(creative_api, reviewer, allow_loopback):
    theirs = webhooks.subscription_create(
        user=reviewer, url="http://127.0.0.1:9/x", events=["item.approved"]
    )

    assert_problem(creative_api.get(f"/webhooks/{theirs.pk}"), 404)
    assert_problem(creative_api.delete(f"/webhooks/{theirs.pk}"), 404)
    assert_problem(creative_api.get(f"/webhooks/{theirs.pk}/deliveries"), 404)


def test_the_delivery_log_and_send_again_over_the_api(
    creative_api, creative, allow_loopback, handoffs
):
    with Receiver(statuses=[500]) as receiver:
        subscription = webhooks.subscription_create(
            user=creative, url=receiver.url, events=["item.approved"]
        )
        event = webhooks.event_emit("item.approved", {"item": {"id": "i"}})
        delivery = webhooks.delivery_attempt(delivery_id=event.deliveries.get().pk)

    log = creative_api.get(f"/webhooks/{subscription.pk}/deliveries").json()["items"]
    assert log[0]["log"][0]["status_code"] == 500
    assert log[0]["event_id"] == event.message_id

    again = creative_api.post(f"/webhooks/{subscription.pk}/deliveries/{delivery.pk}/redeliver")
    assert again.status_code == 202
    assert again.json()["status"] == "pending"


def test_the_event_names_are_listed(creative_api):
    assert set(creative_api.get("/webhooks/events").json()["events"]) == set(webhooks.EVENTS)


# --- The pages -------------------------------------------------------------------------------


def test_the_page_subscribes_and_shows_the_secret_once(creative_client, creative, allow_loopback):
    page = creative_client.post(
        reverse("webhook_new"),
        {"url": "http://127.0.0.1:9/x", "events": ["item.approved", "campaign.paused"]},
    )

    assert page.status_code == 200
    subscription = creative.webhook_subscriptions.get()
    assert subscription.secret in page.content.decode()
    assert subscription.secret not in creative_client.get(reverse("api_access")).content.decode()


def test_the_page_shows_a_refused_target_on_its_field(creative_client):
    page = creative_client.post(
        reverse("webhook_new"), {"url": "http://10.0.0.1/x", "events": ["item.approved"]}
    )

    assert page.status_code == 400
    assert "url" in page.context["webhook_form"].errors


def test_the_delivery_log_page_lists_attempts_and_sends_again(
    creative_client, creative, allow_loopback, handoffs
):
    with Receiver(statuses=[500]) as receiver:
        subscription = webhooks.subscription_create(
            user=creative, url=receiver.url, events=["item.approved"]
        )
        event = webhooks.event_emit("item.approved", {"item": {"id": "i"}})
        delivery = webhooks.delivery_attempt(delivery_id=event.deliveries.get().pk)

    page = creative_client.get(reverse("webhook_detail", args=[subscription.pk])).content.decode()
    assert event.message_id in page and "#1: 500" in page

    response = creative_client.post(
        reverse("webhook_redeliver", args=[subscription.pk, delivery.pk])
    )
    assert response.status_code == 302
    assert subscription.deliveries.count() == 2

    creative_client.post(reverse("webhook_toggle", args=[subscription.pk]))
    subscription.refresh_from_db()
    assert subscription.active is False


def test_another_users_delivery_log_page_is_a_404(creative_client, reviewer, allow_loopback):
    theirs = webhooks.subscription_create(
        user=reviewer, url="http://127.0.0.1:9/x", events=["item.approved"]
    )

    assert creative_client.get(reverse("webhook_detail", args=[theirs.pk])).status_code == 404
