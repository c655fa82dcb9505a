"""A creative ticks results on the catalogue page in a real Chromium and tags them; the page
comes back to the same search."""

from __future__ import annotations

import os

import pytest

from catalogue.models import Entry
from catalogue.services import entries_sync
from tests.conftest import make_user, route_items

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser

PASSWORD = "browser-pw-1"


def test_a_creative_ticks_two_results_and_tags_them(live_server, transactional_db, page, campaign):
    make_user("cleo", "creative", password=PASSWORD)
    rejected = route_items(campaign, to="rejected", count=3)
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))

    page.goto(f"{live_server.url}/accounts/login/?next=/catalogue/%3Fstatus%3Drejected")
    page.fill("input[name=username]", "cleo")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("input[name=selected]")
    assert page.locator("input[name=selected]").count() == 3

    ticked = [str(item.pk) for item in rejected[:2]]
    for pk in ticked:
        page.check(f"input[name=selected][value='{pk}']")
    page.click("form#selection summary:has-text('Tags')")
    page.fill("#sel_add", "Needs reshoot")
    with page.expect_navigation():
        page.click("button:has-text('Apply tags')")

    assert page.url.endswith("/catalogue/?status=rejected")
    assert "Tags on 2 images: added needs reshoot." in page.content()
    tagged = Entry.objects.filter(tag_names__contains=["needs reshoot"])
    assert sorted(str(pk) for pk in tagged.values_list("pk", flat=True)) == sorted(ticked)
