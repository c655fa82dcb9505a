"""The review queue page: claim, show, approve, reject, stale claims, filters."""

from __future__ import annotations

import uuid

from django.urls import reverse

from generation.models import Item
from review.models import ReviewDecision, ReviewTask


def claimed_task(reviewer) -> ReviewTask:
    return ReviewTask.objects.get(claimed_by=reviewer, status=ReviewTask.Status.PENDING)


def decide(client, task: ReviewTask, **data):
    payload = {"token": str(task.lease_token), "decision": "approved"} | data
    return client.post(reverse("review:decide", args=[task.pk]), payload)


def test_the_queue_shows_the_claimed_image_with_its_details(
    reviewer_client, reviewer, review_items
):
    page = reviewer_client.get(reverse("review:queue")).content.decode()

    task = claimed_task(reviewer)
    item = task.item
    assert reverse("catalogue:media", args=[item.image.name]) in page
    assert item.prompt in page
    assert item.negative_prompt in page
    assert str(item.seed) in page
    assert "sd15 v1" in page
    assert f'name="token" value="{task.lease_token}"' in page
    assert reverse("review:decide", args=[task.pk]) in page
    assert "3 images waiting" in page


def test_scores_are_bars_and_measures_sit_in_a_details_element(
    reviewer_client, reviewer, review_items
):
    page = reviewer_client.get(reverse("review:queue")).content.decode()

    quality = claimed_task(reviewer).item.quality
    shown, measures = list(quality.scores), list(quality.measures)
    assert shown and measures
    bars, _, details = page.partition("<details>")
    for key in shown:
        assert f"<span>{key}</span><progress" in bars
    for key in measures:
        assert f">{key}</th>" in details and f">{key}</th>" not in bars


def test_the_same_reviewer_keeps_the_same_image_until_deciding(
    reviewer_client, reviewer, review_items
):
    reviewer_client.get(reverse("review:queue"))
    first = claimed_task(reviewer)

    reviewer_client.get(reverse("review:queue"))

    assert claimed_task(reviewer).pk == first.pk


def test_two_reviewers_are_shown_different_images(client, reviewer, second_reviewer, review_items):
    client.force_login(reviewer)
    client.get(reverse("review:queue"))
    client.force_login(second_reviewer)
    client.get(reverse("review:queue"))

    assert claimed_task(reviewer).pk != claimed_task(second_reviewer).pk


def test_approving_changes_the_item_and_writes_a_decision(reviewer_client, reviewer, review_items):
    reviewer_client.get(reverse("review:queue"))
    task = claimed_task(reviewer)

    response = decide(reviewer_client, task, decision="approved")

    assert response.status_code == 302
    assert response["Location"] == reverse("review:queue")
    assert Item.objects.get(pk=task.item_id).status == Item.Status.APPROVED
    (decision,) = ReviewDecision.objects.filter(task=task)
    assert (decision.decision, decision.reviewer) == ("approved", reviewer)


def test_rejecting_with_a_reason_changes_the_item_and_records_the_reason(
    reviewer_client, reviewer, review_items
):
    reviewer_client.get(reverse("review:queue"))
    task = claimed_task(reviewer)

    response = decide(
        reviewer_client, task, decision="rejected", reason_code="blur", reason_text="soft edges"
    )

    assert response.status_code == 302
    assert Item.objects.get(pk=task.item_id).status == Item.Status.REJECTED
    (decision,) = ReviewDecision.objects.filter(task=task)
    assert decision.decision == "rejected"
    assert (decision.reason_code, decision.reason) == ("blur", "soft edges")


def test_the_next_image_follows_a_decision(reviewer_client, reviewer, review_items):
    reviewer_client.get(reverse("review:queue"))
    first = claimed_task(reviewer)

    response = decide(reviewer_client, first, decision="approved")
    page = reviewer_client.get(response["Location"]).content.decode()

    second = claimed_task(reviewer)
    assert second.pk != first.pk
    assert "Approved. Here is the next one." in page
    assert "2 images waiting" in page


def test_rejecting_without_a_reason_shows_an_error_and_changes_nothing(
    reviewer_client, reviewer, review_items
):
    reviewer_client.get(reverse("review:queue"))
    task = claimed_task(reviewer)

    response = decide(reviewer_client, task, decision="rejected", reason_code="", reason_text="")
    page = reviewer_client.get(response["Location"]).content.decode()

    assert "Say why the image is rejected" in page
    assert Item.objects.get(pk=task.item_id).status == Item.Status.REVIEW
    assert not ReviewDecision.objects.exists()
    assert claimed_task(reviewer).pk == task.pk  # still this reviewer's image


def test_other_as_a_reason_needs_a_description(reviewer_client, reviewer, review_items):
    reviewer_client.get(reverse("review:queue"))
    task = claimed_task(reviewer)

    response = decide(reviewer_client, task, decision="rejected", reason_code="other")

    assert "Describe the problem" in reviewer_client.get(response["Location"]).content.decode()
    assert not ReviewDecision.objects.exists()


def test_a_stale_token_shows_the_message_instead_of_failing(
    reviewer_client, reviewer, review_items
):
    reviewer_client.get(reverse("review:queue"))
    task = claimed_task(reviewer)
    task.lease_token = uuid.uuid4()

    response = decide(reviewer_client, task, decision="approved")
    page = reviewer_client.get(response["Location"]).content.decode()

    assert response.status_code == 302
    assert "no longer yours to decide" in page
    assert Item.objects.get(pk=task.item_id).status == Item.Status.REVIEW
    assert not ReviewDecision.objects.exists()


def test_deciding_twice_shows_the_message_the_second_time(reviewer_client, reviewer, review_items):
    reviewer_client.get(reverse("review:queue"))
    task = claimed_task(reviewer)
    decide(reviewer_client, task, decision="approved")

    response = decide(reviewer_client, task, decision="rejected", reason_code="blur")

    assert "no longer yours to decide" in reviewer_client.get(response["Location"]).content.decode()
    assert ReviewDecision.objects.count() == 1


def test_decide_accepts_only_post(reviewer_client, reviewer, review_items):
    reviewer_client.get(reverse("review:queue"))
    task = claimed_task(reviewer)

    assert reviewer_client.get(reverse("review:decide", args=[task.pk])).status_code == 405


def test_the_campaign_filter_is_kept_across_a_decision(
    reviewer_client, reviewer, review_items, campaign
):
    url = reverse("review:queue") + f"?campaign={campaign.pk}"
    page = reviewer_client.get(url).content.decode()
    task = claimed_task(reviewer)

    response = decide(reviewer_client, task, decision="approved", campaign=str(campaign.pk))

    assert f'<option value="{campaign.pk}" selected>' in page
    assert response["Location"] == url


def test_a_filter_on_a_campaign_without_reviews_shows_the_empty_state(
    reviewer_client,
    reviewer,
    review_items,
    campaign,
    creative,
    template_version,
    recipe,
    products_csv,
):
    from generation.services import campaign_submit

    other = campaign_submit(
        name="Other",
        template_version=template_version,
        recipe=recipe,
        csv_bytes=products_csv,
        user=creative,
    )
    page = reviewer_client.get(reverse("review:queue") + f"?campaign={other.pk}").content.decode()

    assert "Nothing to review" in page
    assert not ReviewTask.objects.filter(claimed_by=reviewer).exists()


def test_an_empty_queue_is_a_friendly_page(reviewer_client, campaign):
    response = reviewer_client.get(reverse("review:queue"))

    assert response.status_code == 200
    assert b"Nothing to review" in response.content
    assert b"decision-form" not in response.content


def test_the_review_page_loads_the_keyboard_script(reviewer_client, review_items):
    page = reviewer_client.get(reverse("review:queue")).content.decode()

    assert "studio/review.js" in page
    assert 'id="approve-button"' in page
    assert 'id="reject-button"' in page


def test_a_malformed_campaign_filter_shows_an_empty_queue_not_every_campaign(
    reviewer_client, reviewer, review_items
):
    response = reviewer_client.get(reverse("review:queue") + "?campaign=not-a-uuid")

    assert response.status_code == 200
    assert b"Nothing to review" in response.content
    assert not ReviewTask.objects.filter(claimed_by=reviewer).exists()


def test_reasons_read_as_plain_words_with_the_measurement_behind_a_toggle(
    reviewer_client, reviewer, review_items
):
    from review.models import QualityResult

    QualityResult.objects.filter(item__in=review_items).update(
        reasons=[
            {"code": "blur", "text": "The subject is blurry.", "detail": "sharpness 40.0, needs 89"}
        ],
        reason_codes=["blur"],
        basis={
            "rule": "weak_score",
            "overall": 0.81,
            "approve_at": 0.7,
            "reject_below": 0.4,
            "weak": ["sharpness"],
        },
    )

    page = reviewer_client.get(reverse("review:queue")).content.decode()

    words, _, toggle = page.partition('<details class="measure">')
    assert "The subject is blurry." in words
    assert "sharpness 40.0, needs 89" not in words
    assert "sharpness 40.0, needs 89" in toggle.partition("</details>")[0]
    assert (
        "Sent to review: sharpness scored below 0.40. One weak score keeps an image from "
        "automatic approval, however high the overall score (0.81)."
    ) in page
    assert "reject_below" not in words.partition("Why it is here")[2]


def test_the_grid_shows_each_images_reasons_in_words(reviewer_client, reviewer, review_items):
    from review.models import QualityResult

    QualityResult.objects.filter(item__in=review_items).update(
        reasons=[{"code": "contrast", "text": "The image looks flat.", "detail": "luma std 9"}]
    )

    page = reviewer_client.get(reverse("review:grid")).content.decode()

    assert page.count("The image looks flat.") == len(review_items)
    assert 'title="luma std 9"' in page
