"""The queue page's skip, undo and send-back buttons, and the grid page."""

from __future__ import annotations

from django.urls import reverse

from generation.models import Item
from review.models import ReviewDecision, ReviewTask
from tests.conftest import route_items


def _claimed(reviewer) -> ReviewTask:
    return ReviewTask.objects.get(claimed_by=reviewer, status=ReviewTask.Status.PENDING)


def test_skip_releases_the_claim_and_shows_a_different_image(
    reviewer_client, reviewer, review_items
):
    reviewer_client.get(reverse("review:queue"))
    first = _claimed(reviewer)

    response = reviewer_client.post(
        reverse("review:skip", args=[first.pk]), {"token": str(first.lease_token)}
    )
    reviewer_client.get(reverse("review:queue"))

    assert response.status_code == 302
    assert _claimed(reviewer).pk != first.pk
    first.refresh_from_db()
    assert first.claimed_by is None


def test_after_a_rejection_the_page_offers_undo_and_send_back(
    reviewer_client, reviewer, review_items
):
    reviewer_client.get(reverse("review:queue"))
    task = _claimed(reviewer)
    reviewer_client.post(
        reverse("review:decide", args=[task.pk]),
        {"token": str(task.lease_token), "decision": "rejected", "reason_code": "blur"},
    )

    page = reviewer_client.get(reverse("review:queue")).content.decode()

    assert 'id="undo-button"' in page
    assert reverse("review:send_back", args=[task.item_id]) in page


def test_the_undo_button_brings_the_decided_image_back(reviewer_client, reviewer, review_items):
    reviewer_client.get(reverse("review:queue"))
    task = _claimed(reviewer)
    reviewer_client.post(
        reverse("review:decide", args=[task.pk]),
        {"token": str(task.lease_token), "decision": "approved"},
    )

    reviewer_client.post(reverse("review:undo"), {})
    page = reviewer_client.get(reverse("review:queue")).content.decode()

    assert reverse("review:decide", args=[task.pk]) in page
    assert ReviewDecision.objects.filter(action="undo").count() == 1


def test_the_send_back_button_queues_a_new_item(
    reviewer_client, reviewer, review_items, django_capture_on_commit_callbacks
):
    reviewer_client.get(reverse("review:queue"))
    task = _claimed(reviewer)
    reviewer_client.post(
        reverse("review:decide", args=[task.pk]),
        {"token": str(task.lease_token), "decision": "rejected", "reason_code": "blur"},
    )

    with django_capture_on_commit_callbacks(execute=False):
        response = reviewer_client.post(reverse("review:send_back", args=[task.item_id]))

    assert response.status_code == 302
    assert Item.objects.filter(regenerated_from_id=task.item_id).count() == 1


def test_the_grid_page_approves_the_selected_images(reviewer_client, reviewer, campaign):
    route_items(campaign, to="review", count=3)
    page = reviewer_client.get(reverse("review:grid")).content.decode()
    tasks = list(ReviewTask.objects.filter(claimed_by=reviewer).order_by("created_at"))
    assert len(tasks) == 3
    for task in tasks:
        assert f'value="{task.pk}:{task.lease_token}"' in page

    response = reviewer_client.post(
        reverse("review:grid_decide"),
        {"tasks": [f"{t.pk}:{t.lease_token}" for t in tasks[:2]], "decision": "approved"},
    )

    assert response.status_code == 302
    statuses = {t.pk: ReviewTask.objects.get(pk=t.pk).status for t in tasks}
    assert list(statuses.values()) == ["decided", "decided", "pending"]


def test_a_grid_post_with_nothing_selected_or_garbage_is_a_message_not_an_error(
    reviewer_client, campaign
):
    route_items(campaign, to="review", count=1)

    empty = reviewer_client.post(reverse("review:grid_decide"), {"decision": "approved"})
    garbage = reviewer_client.post(
        reverse("review:grid_decide"), {"tasks": ["nope"], "decision": "approved"}, follow=True
    )

    assert empty.status_code == 302
    assert garbage.status_code == 200
    assert "not a claimed image" in garbage.content.decode()
    assert not ReviewDecision.objects.exists()


def test_the_queue_shows_the_campaigns_reference_images_beside_the_image(
    reviewer_client, creative, review_items, campaign
):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile

    from review.services import reference_image_add
    from tests.review.conftest import make_image

    buffer = io.BytesIO()
    make_image("product").resize((64, 64)).save(buffer, format="PNG")
    reference = reference_image_add(
        campaign=campaign, upload=SimpleUploadedFile("r.png", buffer.getvalue()), user=creative
    )

    page = reviewer_client.get(reverse("review:queue")).content.decode()

    assert reverse("catalogue:media", args=[reference.image.name]) in page


def test_a_creative_uploads_a_reference_image_and_garbage_is_refused(client, creative, campaign):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.review.conftest import make_image

    client.force_login(creative)
    url = reverse("review:references", args=[campaign.pk])
    buffer = io.BytesIO()
    make_image("product").resize((128, 128)).save(buffer, format="JPEG")

    ok = client.post(url, {"image": SimpleUploadedFile("look.jpg", buffer.getvalue())})
    bad = client.post(url, {"image": SimpleUploadedFile("look.png", b"<svg/>")})

    assert ok.status_code == 302
    assert campaign.reference_images.count() == 1
    assert len(campaign.reference_images.get().phash) == 16
    assert bad.status_code == 400
    assert "not a PNG, JPEG or WEBP image" in bad.content.decode()


def test_the_statistics_page_lists_reviewers_and_links_managers_to_calibration(
    client, manager, reviewer, review_items, campaign
):
    from review.services import review_task_claim_next, review_task_decide

    task = review_task_claim_next(user=reviewer)
    review_task_decide(task_id=task.pk, user=reviewer, token=task.lease_token, decision="approved")
    client.force_login(manager)

    page = client.get(reverse("review:stats")).content.decode()

    assert f'<th scope="row">{reviewer.username}</th><td class="num">1</td>' in page
    assert reverse("review:calibrate", args=[campaign.pk]) in page
