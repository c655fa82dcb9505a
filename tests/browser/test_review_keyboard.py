"""A reviewer approves and rejects with the keyboard in a real Chromium; the approved image
appears in the catalogue."""

from __future__ import annotations

import os

import pytest

from catalogue.jobs import sync_assets
from catalogue.models import Asset
from generation.models import Item
from review.models import ReviewDecision, ReviewTask
from tests.conftest import make_user, route_items

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser

PASSWORD = "browser-pw-1"


def _keys_ready(page, selector: str) -> None:
    """Wait for the page's element and for review.js to listen for keys."""
    page.wait_for_selector(selector)
    page.wait_for_selector("html[data-review-keys=ready]", state="attached")


def _shown_task(page) -> ReviewTask:
    return ReviewTask.objects.get(pk=page.locator(".review[data-task]").get_attribute("data-task"))


def test_a_reviewer_approves_and_rejects_with_the_keyboard_and_the_approval_is_published(
    live_server, transactional_db, page, campaign, redis_queues
):
    # redis_queues: the approval enqueues a delivery job after commit; emptied afterwards.
    make_user("kim", "reviewer", password=PASSWORD)
    route_items(campaign, to="review", count=2)

    page.goto(f"{live_server.url}/accounts/login/?next=/review/")
    page.fill("input[name=username]", "kim")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    _keys_ready(page, ".review[data-task]")
    first = _shown_task(page)

    with page.expect_navigation():
        page.keyboard.press("a")
    _keys_ready(page, ".review[data-task]")
    second = _shown_task(page)
    assert second.pk != first.pk
    assert "Approved. Here is the next one." in page.content()

    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.name") == "reason_code"
    page.keyboard.type("b")  # type-ahead in the focused picker: "Blurry"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    _keys_ready(page, "#undo-button")

    assert Item.objects.get(pk=first.item_id).status == Item.Status.APPROVED
    assert Item.objects.get(pk=second.item_id).status == Item.Status.REJECTED
    assert list(
        ReviewDecision.objects.order_by("created_at").values_list(
            "decision", "reason_code", "reason"
        )
    ) == [("approved", "", ""), ("rejected", "blur", "")]

    # The delivery job, run synchronously: what the delivery worker would do.
    (asset_id, _) = sync_assets([str(first.item_id), str(second.item_id)])
    asset = Asset.objects.get(pk=asset_id)
    page.goto(f"{live_server.url}/catalogue/")

    card = page.locator(f"a[href='/catalogue/{asset.pk}/']")
    assert card.count() == 1
    assert asset.title in card.inner_text()
    assert card.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert Asset.objects.filter(item_id=second.item_id).count() == 0


def test_in_the_grid_a_reviewer_selects_all_approves_and_undoes_with_keys(
    live_server, transactional_db, page, campaign, redis_queues
):
    make_user("kim", "reviewer", password=PASSWORD)
    route_items(campaign, to="review", count=3)

    page.goto(f"{live_server.url}/accounts/login/?next=/review/grid/")
    page.fill("input[name=username]", "kim")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    _keys_ready(page, ".review-grid .grid-card")
    assert page.locator(".review-grid .grid-card").count() == 3

    page.keyboard.press("*")
    assert page.locator("input[name=tasks]:checked").count() == 3
    page.keyboard.press("x")  # the focused (first) card is deselected
    assert page.locator("input[name=tasks]:checked").count() == 2
    with page.expect_navigation():
        page.keyboard.press("a")
    _keys_ready(page, "#undo-button")
    assert "Approved 2 images." in page.content()
    assert ReviewTask.objects.filter(status="decided").count() == 2

    with page.expect_navigation():
        page.keyboard.press("u")
    assert "Undone" in page.content()
    assert ReviewTask.objects.filter(status="decided").count() == 1
    assert ReviewDecision.objects.filter(action="undo").count() == 1
    assert page.locator(".review-grid .grid-card").count() == 2
