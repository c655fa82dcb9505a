"""The look in the Debian Chromium: compact type, SVG icons (no emoji, which this Chromium
draws as empty boxes), the navigation per role, small thumbnails filling their cards.

Each test leaves a screenshot in /tmp (studio_*.png) to look at."""

from __future__ import annotations

import os
import re

import pytest

from catalogue.services import asset_publish
from tests.conftest import make_user, route_items

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser

PASSWORD = "browser-pw-1"
DESKTOP = {"width": 1440, "height": 900}  # where Pico's own type would be 20px
# Pictographs and dingbats, the blocks the old icons came from (🔒 🔎 🎬 ☕).
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f]")


@pytest.fixture
def open_as(browser, live_server, transactional_db):
    """A logged-in page for a new user with the given roles, one browser context each."""
    contexts = []

    def open_as(username: str, *roles: str):
        make_user(username, *roles, password=PASSWORD)
        context = browser.new_context(viewport=DESKTOP)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        return page

    yield open_as
    for context in contexts:
        context.close()


def _nav_links(page) -> list[str]:
    return page.locator("header.site-header nav ul:first-of-type a").all_inner_texts()


def _contrast(page, selector: str) -> float:
    """WCAG contrast ratio of an element's text colour against its background colour."""
    return page.locator(selector).evaluate(
        """element => {
            const style = getComputedStyle(element);
            const luminance = css => {
                const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => {
                    v /= 255;
                    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
                });
                return 0.2126 * r + 0.7152 * g + 0.0722 * b;
            };
            const [a, b] = [luminance(style.color), luminance(style.backgroundColor)];
            return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        }"""
    )


def test_the_type_is_compact_and_nothing_overflows_the_width(live_server, open_as, asset):
    page = open_as("rosa", "reviewer")
    page.goto(f"{live_server.url}/catalogue/")

    sizes = page.evaluate(
        """() => ({
            root: getComputedStyle(document.documentElement).fontSize,
            body: getComputedStyle(document.body).fontSize,
            h1: parseFloat(getComputedStyle(document.querySelector('main h1')).fontSize),
            overflow: document.documentElement.scrollWidth - window.innerWidth,
        })"""
    )
    page.screenshot(path="/tmp/studio_catalogue.png", full_page=True)

    assert sizes["root"] == "15px"
    assert sizes["body"] == "15px"
    assert sizes["h1"] <= 24
    assert sizes["overflow"] <= 0


def test_error_pages_and_empty_states_draw_svg_icons_not_emoji(live_server, open_as):
    page = open_as("cleo", "creative")

    page.goto(f"{live_server.url}/review/")  # not a creative's page
    assert page.locator("main h1").inner_text() == "You can't open this page"
    icon = page.locator("main .empty svg.icon")
    assert icon.bounding_box()["width"] >= 24
    assert not EMOJI.search(page.locator("main").inner_text())
    # The secondary button is light and quiet, but its label stays readable.
    assert _contrast(page, "main .empty [role=button].secondary") >= 4.5
    page.screenshot(path="/tmp/studio_403.png", full_page=True)

    page.goto(f"{live_server.url}/catalogue/?q=zeppelin")
    assert page.locator("#results .empty svg.icon").bounding_box()["width"] >= 24
    assert not EMOJI.search(page.locator("main").inner_text())
    page.screenshot(path="/tmp/studio_empty_search.png", full_page=True)

    page.goto(f"{live_server.url}/review/undo/")  # POST only
    assert page.locator("main h1").inner_text() == "This address only accepts form submissions"
    assert page.locator("main .empty svg.icon").count() == 1
    page.screenshot(path="/tmp/studio_405.png", full_page=True)


@pytest.mark.parametrize(
    ("roles", "links"),
    [
        (("creative",), ["Dashboard", "New campaign", "Catalogue", "Exports", "API"]),
        (
            ("reviewer",),
            ["Dashboard", "Review queue", "Review grid", "Reviewer stats", "Catalogue", "API"],
        ),
        (
            ("manager",),
            ["Dashboard", "Reviewer stats", "Reports", "Budgets", "Catalogue", "Exports", "API"],
        ),
    ],
    ids=["creative", "reviewer", "manager"],
)
def test_each_role_sees_its_pages_in_the_navigation(live_server, open_as, roles, links):
    page = open_as("nia", *roles)

    assert _nav_links(page) == ["Studio", *links]

    if "Reviewer stats" in links:
        page.get_by_role("link", name="Reviewer stats").click()
        page.wait_for_url("**/review/stats/")
        assert page.locator("main h1").inner_text() == "Reviewer statistics"
        current = page.locator("header.site-header a[aria-current=page]").inner_text()
        assert current == "Reviewer stats"
    page.screenshot(path=f"/tmp/studio_nav_{roles[0]}.png")


def test_small_thumbnails_fill_their_cards_with_sharp_pixels(live_server, open_as, campaign):
    for item in route_items(campaign, to="approved", count=3):
        asset_publish(item_id=item.pk)
    page = open_as("mo", "manager")
    page.goto(f"{live_server.url}/catalogue/")
    page.wait_for_selector(".card .thumb img[data-upscaled]")

    card = page.evaluate(
        """() => {
            const img = document.querySelector('.card .thumb img');
            const thumb = img.closest('.thumb').getBoundingClientRect();
            const box = img.getBoundingClientRect();
            const style = getComputedStyle(img);
            return {natural: img.naturalWidth, width: box.width, height: box.height,
                    thumbWidth: thumb.width, thumbHeight: thumb.height,
                    rendering: style.imageRendering, fit: style.objectFit};
        }"""
    )
    page.screenshot(path="/tmp/studio_thumbnails.png", full_page=True)

    assert card["natural"] == 64  # the demo renders: far smaller than the card
    assert card["width"] == card["thumbWidth"] > 100
    assert card["height"] == card["thumbHeight"]
    assert card["fit"] == "cover"
    assert card["rendering"] == "pixelated"

    # A large image shown smaller keeps smooth resampling.
    rendering = page.evaluate(
        """async () => {
            const canvas = document.createElement('canvas');
            canvas.width = canvas.height = 1024;
            const img = document.querySelector('.card .thumb img');
            await new Promise(resolve => { img.onload = resolve; img.src = canvas.toDataURL(); });
            return getComputedStyle(img).imageRendering;
        }"""
    )
    assert rendering == "auto"
