from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from generation.models import Item
from review.models import ReviewDecision, ReviewTask
from review.services import ReviewError, review_task_claim_next, review_task_decide
from tests.conftest import make_user, route_items


def test_a_reviewer_gets_the_oldest_borderline_image_with_a_lease(reviewer, review_items):
    task = review_task_claim_next(user=reviewer)
    assert task.item == review_items[0]
    assert task.claimed_by == reviewer
    assert task.lease_token is not None
    assert task.lease_until > timezone.now()


def test_asking_again_returns_the_same_claim_while_it_holds(reviewer, review_items):
    first = review_task_claim_next(user=reviewer)
    assert review_task_claim_next(user=reviewer) == first


def test_two_reviewers_get_different_images(reviewer, second_reviewer, review_items):
    mine = review_task_claim_next(user=reviewer)
    theirs = review_task_claim_next(user=second_reviewer)
    assert mine.pk != theirs.pk


def test_an_expired_claim_returns_to_the_queue(reviewer, second_reviewer, campaign):
    route_items(campaign, to="review", count=1)
    mine = review_task_claim_next(user=reviewer)
    ReviewTask.objects.filter(pk=mine.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    theirs = review_task_claim_next(user=second_reviewer)
    assert theirs.pk == mine.pk
    with pytest.raises(ReviewError, match="no longer yours"):
        review_task_decide(
            task_id=mine.pk, user=reviewer, token=mine.lease_token, decision="approved"
        )


def test_the_queue_can_be_filtered_by_campaign(reviewer, review_items, campaign):
    assert review_task_claim_next(user=reviewer, campaign_id=campaign.pk) is not None
    other = make_user("x", "reviewer")
    import uuid

    assert review_task_claim_next(user=other, campaign_id=uuid.uuid4()) is None


def test_approving_moves_the_item_to_approved_and_keeps_an_audit_entry(
    reviewer, review_items, django_capture_on_commit_callbacks, handoffs
):
    task = review_task_claim_next(user=reviewer)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        review_task_decide(
            task_id=task.pk, user=reviewer, token=task.lease_token, decision="approved", reason=""
        )
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.DECIDED and task.decided_by == reviewer
    assert Item.objects.get(pk=task.item_id).status == Item.Status.APPROVED
    assert list(ReviewDecision.objects.values_list("decision", "reviewer")) == [
        ("approved", reviewer.pk)
    ]
    for callback in callbacks:  # publishing and indexing are enqueued after commit
        callback()
    assert sorted(handoffs) == [
        ("catalogue.jobs.index_items", [str(task.item_id)]),
        ("catalogue.jobs.sync_assets", [str(task.item_id)]),
    ]


def test_rejecting_needs_a_reason(reviewer, review_items):
    task = review_task_claim_next(user=reviewer)
    with pytest.raises(ReviewError, match="reason"):
        review_task_decide(
            task_id=task.pk, user=reviewer, token=task.lease_token, decision="rejected", reason=" "
        )
    review_task_decide(
        task_id=task.pk, user=reviewer, token=task.lease_token, decision="rejected", reason="blurry"
    )
    assert Item.objects.get(pk=task.item_id).status == Item.Status.REJECTED


def test_a_decision_with_the_wrong_token_or_by_someone_else_is_refused(
    reviewer, second_reviewer, review_items
):
    import uuid

    task = review_task_claim_next(user=reviewer)
    with pytest.raises(ReviewError):
        review_task_decide(task_id=task.pk, user=reviewer, token=uuid.uuid4(), decision="approved")
    with pytest.raises(ReviewError):
        review_task_decide(
            task_id=task.pk, user=second_reviewer, token=task.lease_token, decision="approved"
        )
    review_task_decide(task_id=task.pk, user=reviewer, token=task.lease_token, decision="approved")
    with pytest.raises(ReviewError):  # a second decision on the same claim
        review_task_decide(
            task_id=task.pk,
            user=reviewer,
            token=task.lease_token,
            decision="rejected",
            reason="changed my mind",
        )
    assert ReviewDecision.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_on_two_connections_never_claim_the_same_image(campaign):
    route_items(campaign, to="review", count=12)
    reviewers = [make_user(f"r{i}", "reviewer") for i in range(2)]
    claimed: dict[int, list] = {0: [], 1: []}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            for _ in range(6):
                task = review_task_claim_next(user=reviewers[index])
                if task is None:
                    break
                claimed[index].append(task.pk)
                # Decide at once so the next call claims a new image.
                review_task_decide(
                    task_id=task.pk,
                    user=reviewers[index],
                    token=task.lease_token,
                    decision="approved",
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert set(claimed[0]).isdisjoint(claimed[1])
    assert len(claimed[0]) + len(claimed[1]) == 12
