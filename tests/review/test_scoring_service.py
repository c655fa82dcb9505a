from __future__ import annotations

from generation.models import Item
from review.models import QualityResult, ReviewTask
from review.services import item_score
from tests.conftest import item_as_generated, route_items


def test_scoring_routes_a_borderline_image_to_the_review_queue(campaign):
    (item,) = route_items(campaign, to="review")
    assert item.status == Item.Status.REVIEW
    assert ReviewTask.objects.filter(item=item, status="pending").exists()
    result = QualityResult.objects.get(item=item)
    assert {"sharpness", "exposure", "contrast"} <= set(result.scores)
    assert result.reasons


def test_scoring_approves_and_enqueues_publishing_after_commit(
    campaign, django_capture_on_commit_callbacks, handoffs
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        (item,) = route_items(campaign, to="approved")
    assert item.status == Item.Status.APPROVED
    assert item.finished_at is not None
    assert handoffs == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert sorted(handoffs) == [
        ("catalogue.jobs.index_items", [str(item.pk)]),
        ("catalogue.jobs.sync_assets", [str(item.pk)]),
    ]


def test_scoring_rejects_below_the_lower_threshold(campaign):
    (item,) = route_items(campaign, to="rejected")
    assert item.status == Item.Status.REJECTED
    assert not ReviewTask.objects.filter(item=item).exists()


def test_scoring_a_blank_frame_rejects_it_whatever_the_thresholds(campaign):
    import io

    from PIL import Image

    from review.models import QualityPolicy

    QualityPolicy.objects.filter(campaign=campaign).update(approve_at=0.0, reject_below=0.0)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buffer, format="PNG")
    item = item_as_generated(campaign.items.first(), buffer.getvalue())
    item_score(item_id=item.pk)
    item.refresh_from_db()
    assert item.status == Item.Status.REJECTED
    assert "blank" in item.quality.reason_codes
    assert item.quality.hard_fail


def test_scoring_twice_scores_once(campaign):
    (item,) = route_items(campaign, to="review")
    assert item_score(item_id=item.pk) is None
    assert QualityResult.objects.filter(item=item).count() == 1
