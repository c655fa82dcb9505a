"""Review labour in the cost ledger: the time from claim to decision × the reviewer's rate."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from generation.models import CostEntry, Item
from review.models import ReviewTask
from review.services import (
    ReviewError,
    review_decision_undo,
    review_task_claim_next,
    review_task_decide,
    review_tasks_claim_grid,
    review_tasks_decide,
)
from tests.conftest import route_items


def claimed_seconds_ago(task: ReviewTask, seconds: int) -> ReviewTask:
    """Move a claim back in time, as if the reviewer had taken it ``seconds`` ago."""
    lease = timedelta(seconds=settings.STUDIO_REVIEW_LEASE_SECONDS)
    until = timezone.now() - timedelta(seconds=seconds) + lease
    ReviewTask.objects.filter(pk=task.pk).update(lease_until=until)
    task.refresh_from_db()
    return task


def test_a_decision_records_the_reviewers_time_since_the_claim_at_their_hourly_rate(
    reviewer, review_items, settings
):
    settings.STUDIO_REVIEWER_HOURLY_RATE = Decimal("36.00")  # 0.01 a second
    task = claimed_seconds_ago(review_task_claim_next(user=reviewer), 90)

    review_task_decide(task_id=task.pk, user=reviewer, token=task.lease_token, decision="approved")

    entry = CostEntry.objects.get(kind="review")
    assert entry.unit == "reviewer_second"
    assert 90 <= entry.quantity < 120
    assert entry.rate == Decimal("0.01")
    assert entry.amount == (entry.quantity * Decimal("0.01")).quantize(Decimal("1e-10"))
    assert (entry.item_id, entry.user, entry.campaign_id) == (
        task.item_id,
        reviewer,
        task.campaign_id,
    )
    assert entry.key == f"review:{task.pk}:{task.lease_token}"
    assert entry.detail["setting"] == "STUDIO_REVIEWER_HOURLY_RATE"
    item = Item.objects.get(pk=task.item_id)
    assert item.cost == entry.amount  # the item's cost includes its review


def test_a_grid_decided_at_once_counts_the_reviewers_time_once(reviewer, campaign):
    route_items(campaign, to="review", count=3)
    tasks = [claimed_seconds_ago(t, 60) for t in review_tasks_claim_grid(user=reviewer, size=3)]

    decided, errors = review_tasks_decide(
        user=reviewer, claims=[(t.pk, t.lease_token) for t in tasks], decision="approved"
    )

    assert len(decided) == 3 and not errors
    seconds = sorted(CostEntry.objects.filter(kind="review").values_list("quantity", flat=True))
    assert len(seconds) == 3
    assert 60 <= sum(seconds) < 90  # one minute of work, not three
    assert seconds[-1] >= 60


def test_a_refused_decision_records_no_labour(reviewer, second_reviewer, review_items):
    task = review_task_claim_next(user=reviewer)

    with pytest.raises(ReviewError):
        review_task_decide(
            task_id=task.pk, user=second_reviewer, token=task.lease_token, decision="approved"
        )

    assert not CostEntry.objects.exists()


def test_deciding_again_after_an_undo_is_more_labour(reviewer, review_items):
    task = review_task_claim_next(user=reviewer)
    review_task_decide(task_id=task.pk, user=reviewer, token=task.lease_token, decision="approved")

    again = review_decision_undo(user=reviewer)
    review_task_decide(
        task_id=again.pk,
        user=reviewer,
        token=again.lease_token,
        decision="rejected",
        reason_code="blur",
    )

    keys = set(CostEntry.objects.filter(kind="review").values_list("key", flat=True))
    assert keys == {f"review:{task.pk}:{task.lease_token}", f"review:{task.pk}:{again.lease_token}"}
