"""Recalibrating a campaign can re-decide the images still waiting in review under the new
thresholds, with an audit row per moved image; images a reviewer has open stay theirs."""

from __future__ import annotations

from django.urls import reverse

from generation.models import Item
from review.models import ReviewDecision, ReviewTask
from review.services import review_task_claim_next
from tests.conftest import route_items


def _calibrate(client, campaign, **extra):
    data = {"approve_at": "0.0", "reject_below": "0.0", "unwanted_concepts": ""} | extra
    return client.post(reverse("review:calibrate", args=[campaign.pk]), data, follow=True)


def test_saving_with_reroute_moves_waiting_images_and_records_each_move(
    client, manager, reviewer, campaign, handoffs, django_capture_on_commit_callbacks
):
    waiting = route_items(campaign, to="review", count=3)
    claimed = review_task_claim_next(user=reviewer)
    client.force_login(manager)

    with django_capture_on_commit_callbacks(execute=True):
        text = _calibrate(client, campaign, reroute="1").content.decode()

    assert "2 were approved and 0 rejected" in text
    assert "1 open with a reviewer were left to them" in text
    moved = [item for item in waiting if item.pk != claimed.item_id]
    assert set(Item.objects.filter(status="approved").values_list("pk", flat=True)) == {
        item.pk for item in moved
    }
    rows = ReviewDecision.objects.filter(action=ReviewDecision.Action.REROUTE)
    assert {row.task.item_id for row in rows} == {item.pk for item in moved}
    assert all(row.reviewer == manager and "approve at 0" in row.reason for row in rows)
    assert ReviewTask.objects.get(pk=claimed.pk).status == ReviewTask.Status.PENDING
    delivered = [ids for job, ids in handoffs if job == "catalogue.jobs.sync_assets"]
    assert sorted(str(pk) for ids in delivered for pk in ids) == sorted(str(i.pk) for i in moved)


def test_saving_without_reroute_leaves_the_queue_as_it_was(client, manager, campaign):
    route_items(campaign, to="review", count=2)
    client.force_login(manager)
    page = client.get(reverse("review:calibrate", args=[campaign.pk])).content.decode()
    assert "Also re-decide the 2 images waiting in review" in page

    text = _calibrate(client, campaign).content.decode()

    assert "applies to images scored from now on" in text
    assert Item.objects.filter(status="review").count() == 2
    assert not ReviewDecision.objects.filter(action=ReviewDecision.Action.REROUTE).exists()


def test_a_stricter_policy_rejects_waiting_images_with_their_reason(client, manager, campaign):
    route_items(campaign, to="review", count=2)
    client.force_login(manager)

    text = _calibrate(client, campaign, approve_at="1.0", reject_below="1.0", reroute="1")

    assert "0 were approved and 2 rejected" in text.content.decode()
    tasks = ReviewTask.objects.filter(campaign=campaign)
    assert all(t.decision == "rejected" and t.reason_code for t in tasks)
