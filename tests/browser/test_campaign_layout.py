"""In a real Chromium: a 200-character campaign name without a space does not widen the
dashboard or the campaign page, and cancelling a campaign asks first (without JavaScript too)."""

from __future__ import annotations

import os

import pytest

from generation.models import Campaign, Item
from tests.conftest import make_user

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser

PASSWORD = "browser-pw-1"
LONG_NAME = "W" * 200  # W: the widest Latin letter
VIEWPORTS = [pytest.param(1280, 800, id="desktop"), pytest.param(390, 844, id="phone")]


@pytest.fixture
def long_campaign(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(name=LONG_NAME)
    campaign.refresh_from_db()
    return campaign


def _login(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def _assert_not_wider_than_the_viewport(page) -> None:
    """The document's scroll width is the viewport's: nothing sticks out to the right."""
    scroll_width, viewport_width, culprits = page.evaluate(
        """() => {
            const root = document.documentElement, width = root.clientWidth;
            const culprits = [...document.body.querySelectorAll("*")]
                .filter((e) => e.getBoundingClientRect().right > width + 0.5)
                .slice(0, 5)
                .map((e) => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`);
            return [root.scrollWidth, width, culprits];
        }"""
    )
    assert scroll_width <= viewport_width, culprits


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_a_long_campaign_name_does_not_widen_the_dashboard_or_the_campaign_page(
    live_server, transactional_db, browser, long_campaign, width, height
):
    make_user("cleo", "creative", password=PASSWORD)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _login(page, live_server, "cleo")

        page.goto(f"{live_server.url}/")
        _assert_not_wider_than_the_viewport(page)
        assert page.locator(f"a[title='{LONG_NAME}']").count() == 1  # cut: the name on hover

        page.goto(f"{live_server.url}/campaigns/{long_campaign.pk}/")
        _assert_not_wider_than_the_viewport(page)
        assert page.locator("h1").inner_text() == LONG_NAME  # wrapped, not cut
        if width == 1280:
            page.screenshot(path="/tmp/studio_h2_campaign_page.png", full_page=False)
    finally:
        context.close()


def test_cancel_asks_how_many_queued_images_go_and_works_without_javascript(
    live_server, transactional_db, browser, long_campaign
):
    make_user("cleo", "creative", password=PASSWORD)
    queued = long_campaign.items.filter(status=Item.Status.QUEUED).count()
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _login(page, live_server, "cleo")
        page.goto(f"{live_server.url}/campaigns/{long_campaign.pk}/")

        confirm = page.get_by_role("button", name=f"Yes, cancel {queued} images")
        assert not confirm.is_visible()  # one click is not enough
        page.get_by_text("Cancel campaign…").click()
        assert page.get_by_text(
            f"Cancel {queued} queued images? This cannot be undone."
        ).is_visible()
        page.screenshot(path="/tmp/studio_h2_cancel_open.png", full_page=False)
        assert Campaign.objects.get(pk=long_campaign.pk).status == Campaign.Status.RUNNING

        with page.expect_navigation():
            confirm.click()

        assert Campaign.objects.get(pk=long_campaign.pk).status == Campaign.Status.CANCELLED
        assert long_campaign.items.filter(status=Item.Status.CANCELLED).count() == queued
        assert f"{queued} queued item(s) cancelled" in page.content()
        _assert_not_wider_than_the_viewport(page)  # the message repeats the long name
    finally:
        context.close()
