from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import Item
from generation.services import items_reconcile


@pytest.mark.django_db(transaction=True)
def test_items_whose_job_was_lost_with_redis_are_enqueued_again(redis_queues, campaign):
    # campaign_submit enqueued 10 jobs at commit; a flushed Redis loses them all.
    assert redis_queues["generation"].count == 10
    redis_queues["generation"].connection.flushdb()
    Item.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    counts = items_reconcile()
    assert counts["requeued"] == 40
    assert redis_queues["generation"].count == 10
    # A second pass finds every job alive and enqueues nothing more.
    assert items_reconcile()["requeued"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_running_item_whose_lease_expired_is_queued_again_then_failed_after_the_last_attempt(
    redis_queues, campaign, settings
):
    settings.STUDIO_MAX_ATTEMPTS = 2
    item = campaign.items.first()
    past = timezone.now() - timedelta(seconds=1)
    Item.objects.filter(pk=item.pk).update(status="running", attempts=1, lease_until=past)
    assert items_reconcile()["expired"] == 1
    item.refresh_from_db()
    assert item.status == Item.Status.QUEUED and "lease expired" in item.error
    Item.objects.filter(pk=item.pk).update(status="running", attempts=2, lease_until=past)
    items_reconcile()
    item.refresh_from_db()
    assert item.status == Item.Status.FAILED
