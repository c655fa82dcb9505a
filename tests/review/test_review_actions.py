"""Skip, undo, grid decisions, send back, reviewer statistics and calibration."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalogue.models import Asset
from catalogue.services import asset_publish, asset_withdraw
from generation.models import Item
from review.models import ReviewDecision, ReviewTask
from review.selectors import calibration, reviewer_stats
from review.services import (
    ReviewError,
    item_send_back,
    review_decision_undo,
    review_task_claim_next,
    review_task_decide,
    review_task_release,
    review_tasks_claim_grid,
    review_tasks_decide,
)
from tests.conftest import route_items


def _decide(user, decision="approved", reason=""):
    task = review_task_claim_next(user=user)
    return review_task_decide(
        task_id=task.pk, user=user, token=task.lease_token, decision=decision, reason=reason
    )


# Skip


def test_a_skipped_image_goes_back_to_the_queue_and_the_reviewer_gets_the_next_one(
    reviewer, second_reviewer, review_items
):
    first = review_task_claim_next(user=reviewer)

    assert review_task_release(task_id=first.pk, user=reviewer, token=first.lease_token)
    following = review_task_claim_next(user=reviewer, exclude_ids=[str(first.pk)])

    assert following.pk != first.pk
    assert review_task_claim_next(user=second_reviewer).pk == first.pk  # free for others


def test_a_skipped_image_comes_back_when_nothing_else_is_left(reviewer, campaign):
    route_items(campaign, to="review", count=1)
    only = review_task_claim_next(user=reviewer)
    review_task_release(task_id=only.pk, user=reviewer, token=only.lease_token)

    assert review_task_claim_next(user=reviewer, exclude_ids=[str(only.pk)]).pk == only.pk


def test_only_the_claim_holder_can_release_it(reviewer, second_reviewer, review_items):
    task = review_task_claim_next(user=reviewer)

    assert not review_task_release(task_id=task.pk, user=second_reviewer, token=task.lease_token)
    task.refresh_from_db()
    assert task.claimed_by == reviewer


# Undo


def test_undoing_a_rejection_adds_an_entry_and_puts_the_image_back_in_front_of_the_reviewer(
    reviewer, review_items
):
    task = _decide(reviewer, "rejected", "blurry")
    original = ReviewDecision.objects.get()

    undone = review_decision_undo(user=reviewer)

    assert undone.pk == task.pk
    assert undone.status == ReviewTask.Status.PENDING and undone.claimed_by == reviewer
    assert Item.objects.get(pk=task.item_id).status == Item.Status.REVIEW
    entries = list(ReviewDecision.objects.order_by("created_at", "pk"))
    assert [(e.action, e.decision) for e in entries] == [
        ("decide", "rejected"),
        ("undo", "rejected"),
    ]
    assert entries[1].reverses_id == original.pk
    assert entries[0].reason == "blurry"  # the original entry is never rewritten
    assert review_task_claim_next(user=reviewer).pk == task.pk


def test_undoing_an_approval_withdraws_the_published_asset_and_approving_again_restores_it(
    reviewer, review_items, stages_inline
):
    with stages_inline():
        task = _decide(reviewer, "approved")
    asset = Asset.objects.get(item_id=task.item_id)
    assert asset.status == Asset.Status.PUBLISHED

    with stages_inline():
        review_decision_undo(user=reviewer)

    asset.refresh_from_db()
    assert asset.status == Asset.Status.WITHDRAWN
    assert asset.withdrawn_reason == Asset.Withdrawal.REVIEW
    assert Item.objects.get(pk=task.item_id).status == Item.Status.REVIEW

    with stages_inline():
        _decide(reviewer, "approved")
    asset.refresh_from_db()
    assert asset.status == Asset.Status.PUBLISHED and asset.withdrawn_reason == ""


def test_an_asset_an_admin_withdrew_stays_withdrawn_through_undo_and_approval(
    reviewer, admin_user, review_items, stages_inline
):
    with stages_inline():
        task = _decide(reviewer, "approved")
    asset = Asset.objects.get(item_id=task.item_id)
    assert asset_withdraw(asset=asset, user=admin_user, note="model release expired")

    with stages_inline():
        review_decision_undo(user=reviewer)
    with stages_inline():
        _decide(reviewer, "approved")

    asset.refresh_from_db()
    assert asset.status == Asset.Status.WITHDRAWN
    assert asset.withdrawn_reason == Asset.Withdrawal.ADMIN
    assert asset.withdrawn_by == admin_user
    assert asset.withdrawn_note == "model release expired"


def test_an_approval_undone_before_publishing_is_never_published(reviewer, review_items):
    task = _decide(reviewer, "approved")

    review_decision_undo(user=reviewer)

    assert asset_publish(item_id=task.item_id) is None
    assert not Asset.objects.exists()


def test_a_decision_can_be_undone_once_and_decided_again(reviewer, review_items):
    task = _decide(reviewer, "rejected", "blurry")
    review_decision_undo(user=reviewer)

    again = review_task_claim_next(user=reviewer)
    review_task_decide(
        task_id=again.pk, user=reviewer, token=again.lease_token, decision="approved"
    )

    assert again.pk == task.pk
    assert Item.objects.get(pk=task.item_id).status == Item.Status.APPROVED
    assert list(ReviewDecision.objects.values_list("action", "decision")) == [
        ("decide", "rejected"),
        ("undo", "rejected"),
        ("decide", "approved"),
    ]


def test_undo_is_refused_after_the_window_or_with_nothing_to_undo(settings, reviewer, review_items):
    with pytest.raises(ReviewError, match="^undo: you have no decision to undo"):
        review_decision_undo(user=reviewer)
    _decide(reviewer, "approved")
    ReviewDecision.objects.update(created_at=timezone.now() - timedelta(hours=1))
    settings.STUDIO_REVIEW_UNDO_SECONDS = 600

    with pytest.raises(ReviewError, match="can be undone for 10 minutes"):
        review_decision_undo(user=reviewer)


def test_a_reviewer_cannot_undo_someone_elses_decision(reviewer, second_reviewer, review_items):
    _decide(reviewer, "approved")
    decision = ReviewDecision.objects.get()

    with pytest.raises(ReviewError, match="no decision to undo"):
        review_decision_undo(user=second_reviewer, decision_id=decision.pk)


# Send back


def test_a_rejected_image_is_sent_back_for_a_new_seed_with_the_same_recipe(
    reviewer, review_items, django_capture_on_commit_callbacks
):
    task = _decide(reviewer, "rejected", "artefacts")
    old = Item.objects.get(pk=task.item_id)

    with django_capture_on_commit_callbacks(execute=False):
        new = item_send_back(item_id=old.pk, user=reviewer)

    assert new.regenerated_from_id == old.pk
    assert new.prompt == old.prompt and new.seed != old.seed
    assert new.status == Item.Status.QUEUED
    assert ReviewDecision.objects.filter(action="send_back", task=task).count() == 1
    with pytest.raises(ReviewError, match="sent back already"):
        item_send_back(item_id=old.pk, user=reviewer)
    with pytest.raises(ReviewError, match="already sent back"):
        review_decision_undo(user=reviewer)


def test_only_a_rejected_image_can_be_sent_back(reviewer, review_items):
    task = _decide(reviewer, "approved")

    with pytest.raises(ReviewError, match="only a rejected image"):
        item_send_back(item_id=task.item_id, user=reviewer)


# Grid


def test_the_grid_claims_several_images_each_with_its_own_lease(
    reviewer, second_reviewer, campaign
):
    route_items(campaign, to="review", count=4)

    mine = review_tasks_claim_grid(user=reviewer, size=3)
    theirs = review_tasks_claim_grid(user=second_reviewer, size=3)

    assert len(mine) == 3 and len(theirs) == 1
    assert len({t.lease_token for t in mine}) == 3
    assert not {t.pk for t in mine} & {t.pk for t in theirs}
    assert [t.pk for t in review_tasks_claim_grid(user=reviewer, size=3)] == [t.pk for t in mine]


def test_a_grid_decision_decides_every_selected_image_and_reports_stale_claims(reviewer, campaign):
    route_items(campaign, to="review", count=3)
    tasks = review_tasks_claim_grid(user=reviewer, size=3)
    ReviewTask.objects.filter(pk=tasks[2].pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )

    decided, errors = review_tasks_decide(
        user=reviewer,
        claims=[(t.pk, t.lease_token) for t in tasks],
        decision="rejected",
        reason="off-brand",
    )

    assert {t.pk for t in decided} == {tasks[0].pk, tasks[1].pk}
    assert len(errors) == 1 and str(tasks[2].pk) in errors[0]
    assert ReviewDecision.objects.filter(decision="rejected", reason="off-brand").count() == 2


def test_a_grid_rejection_without_a_reason_decides_nothing(reviewer, campaign):
    route_items(campaign, to="review", count=2)
    tasks = review_tasks_claim_grid(user=reviewer, size=2)

    with pytest.raises(ReviewError, match="^reason: "):
        review_tasks_decide(
            user=reviewer, claims=[(t.pk, t.lease_token) for t in tasks], decision="rejected"
        )
    assert not ReviewDecision.objects.exists()


# Statistics


def test_reviewer_statistics_count_decisions_per_hour_and_agreement(reviewer, campaign):
    route_items(campaign, to="review", count=3)
    # Between the thresholds the lean goes to the nearer one: make it lean to approval.
    campaign.quality_policy.approve_at, campaign.quality_policy.reject_below = 1.0, 0.0
    campaign.quality_policy.save()
    _decide(reviewer, "approved")
    _decide(reviewer, "rejected", "blurry")
    _decide(reviewer, "approved")
    review_decision_undo(user=reviewer)
    now = timezone.now()
    for minutes, decision in zip(
        (30, 20, 0), ReviewDecision.objects.filter(action="decide").order_by("pk"), strict=True
    ):
        ReviewDecision.objects.filter(pk=decision.pk).update(
            created_at=now - timedelta(minutes=minutes)
        )

    (row,) = reviewer_stats()

    assert row["username"] == reviewer.username
    assert (row["decided"], row["approved"], row["rejected"], row["undone"]) == (2, 1, 1, 1)
    assert row["agreement"] == pytest.approx(0.5)
    assert row["per_hour"] == pytest.approx(2 / (31 / 60))


# Calibration


def test_calibration_shows_the_histogram_and_how_many_images_a_threshold_change_moves(
    reviewer, campaign
):
    route_items(campaign, to="review", count=3)
    _decide(reviewer, "approved")
    policy = campaign.quality_policy
    overall = campaign.items.filter(quality__isnull=False).first().quality.overall

    same = calibration(
        campaign=campaign, approve_at=policy.approve_at, reject_below=policy.reject_below
    )
    lower = calibration(campaign=campaign, approve_at=0.0, reject_below=0.0)

    assert same["moved"] == 0 and same["total"] == 3
    assert sum(b["total"] for b in same["histogram"]) == 3
    assert sum(b["human_approved"] for b in same["histogram"]) == 1
    assert 0 < overall <= 1
    assert lower["moved"] == 3
    assert lower["moves"] == [{"from": "review", "to": "approved", "count": 3}]


def test_a_manager_saves_new_thresholds_on_the_calibration_page(manager_client, campaign):
    url = reverse("review:calibrate", args=[campaign.pk])

    page = manager_client.get(url)
    response = manager_client.post(
        url, {"approve_at": "0.8", "reject_below": "0.3", "unwanted_concepts": "text\nlogo\n"}
    )

    assert page.status_code == 200 and b"Scores and decisions" in page.content
    assert response.status_code == 302
    campaign.quality_policy.refresh_from_db()
    assert (campaign.quality_policy.approve_at, campaign.quality_policy.reject_below) == (0.8, 0.3)
    assert campaign.quality_policy.unwanted_concepts == ["text", "logo"]


def test_crossed_thresholds_are_refused_naming_the_field(manager_client, campaign):
    url = reverse("review:calibrate", args=[campaign.pk])

    response = manager_client.post(url, {"approve_at": "0.3", "reject_below": "0.8"})

    assert response.status_code == 200
    assert "0.8 is above approve_at 0.3" in response.content.decode()
    campaign.quality_policy.refresh_from_db()
    assert campaign.quality_policy.approve_at != 0.3


def test_the_calibration_preview_is_an_htmx_partial(manager_client, campaign):
    url = reverse("review:calibrate", args=[campaign.pk])

    response = manager_client.get(
        url, {"approve_at": "0.5", "reject_below": "0.1"}, headers={"HX-Request": "true"}
    )

    body = response.content.decode()
    assert body.lstrip().startswith('<section id="preview">')
    assert "<html" not in body


@pytest.mark.parametrize(
    ("persona", "name", "expected"),
    [
        ("reviewer", "review:calibrate", 403),
        ("creative", "review:calibrate", 403),
        ("admin_user", "review:calibrate", 200),
        ("reviewer", "review:references", 403),
        ("creative", "review:references", 200),
        ("outsider", "review:grid", 403),
        ("creative", "review:grid", 403),
        ("reviewer", "review:grid", 200),
        ("creative", "review:stats", 403),
        ("manager", "review:stats", 200),
    ],
)
def test_each_page_is_open_only_to_its_roles(client, request, campaign, persona, name, expected):
    client.force_login(request.getfixturevalue(persona))
    args = [campaign.pk] if name in ("review:calibrate", "review:references") else []

    assert client.get(reverse(name, args=args)).status_code == expected


def test_an_anonymous_visitor_is_sent_to_log_in(client, campaign):
    response = client.post(reverse("review:undo"))

    assert response.status_code == 302 and "login" in response["Location"]


def test_an_approval_undone_and_approved_again_is_published_again(reviewer, review_items):
    task = _decide(reviewer, "approved")
    asset = asset_publish(item_id=task.item_id)
    review_decision_undo(user=reviewer)

    again = review_task_claim_next(user=reviewer)
    review_task_decide(
        task_id=again.pk, user=reviewer, token=again.lease_token, decision="approved"
    )

    asset.refresh_from_db()
    assert asset.status == Asset.Status.PUBLISHED
    assert asset_publish(item_id=task.item_id).pk == asset.pk


def test_calibration_explains_that_one_weak_score_blocks_automatic_approval(
    manager_client, campaign
):
    page = manager_client.get(reverse("review:calibrate", args=[campaign.pk])).content.decode()

    assert "one weak score" in page


def test_rejected_for_blur_is_one_query_over_automatic_and_human_rejections(
    campaign, reviewer, django_assert_num_queries
):
    from review.models import QualityResult
    from review.selectors import items_rejected_for

    automatic = route_items(campaign, to="rejected", count=2)
    QualityResult.objects.filter(item=automatic[0]).update(reason_codes=["blur", "contrast"])
    QualityResult.objects.filter(item=automatic[1]).update(reason_codes=["contrast"])
    route_items(campaign, to="review", count=2)
    QualityResult.objects.filter(item__status="review").update(reason_codes=["blur"])
    by_hand = review_task_claim_next(user=reviewer)
    review_task_decide(
        task_id=by_hand.pk,
        user=reviewer,
        token=by_hand.lease_token,
        decision="rejected",
        reason_code="blur",
    )
    other = review_task_claim_next(user=reviewer)
    review_task_decide(
        task_id=other.pk,
        user=reviewer,
        token=other.lease_token,
        decision="rejected",
        reason_code="exposure",
    )

    with django_assert_num_queries(1):
        found = {item.pk for item in items_rejected_for("blur")}

    assert found == {automatic[0].pk, by_hand.item_id}
