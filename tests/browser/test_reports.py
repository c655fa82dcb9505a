"""A manager opens every report page in a real Chromium: the charts are drawn by Chart.js and
the tables beside them are filled."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from catalogue.services import entries_sync
from generation.models import CostEntry
from generation.services import cost_record
from tests.conftest import make_user, route_items

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser

PASSWORD = "browser-pw-1"


def test_a_manager_sees_charts_drawn_and_tables_filled(
    live_server, transactional_db, page, campaign
):
    make_user("mona", "manager", password=PASSWORD)
    for item in route_items(campaign, to="approved", count=3) + route_items(
        campaign, to="rejected", count=2
    ):
        cost_record(
            key=f"browser:{item.pk}",
            kind=CostEntry.Kind.COMPUTE,
            quantity=Decimal(2),
            unit="gpu_second",
            rate=Decimal("0.005"),
            item_id=item.pk,
        )
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))

    page.goto(f"{live_server.url}/accounts/login/?next=/reports/")
    page.fill("input[name=username]", "mona")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("canvas[data-drawn=true]")
    assert "Cost per approved image" in page.inner_text("#table-overview")

    for path, table in [
        ("/reports/campaigns/", "campaigns"),
        ("/reports/recipes/?min_images=1&bar=50", "combinations"),  # 3 of 5: 60%
        ("/reports/prompts/?min_images=1", "fields"),
        ("/reports/hosting/", "hosting"),
    ]:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_selector(f"#table-{table} canvas[data-drawn=true]")
        drawn = page.evaluate(
            f"document.querySelector('#table-{table} canvas').chart.data.datasets[0].data.length"
        )
        assert drawn > 0
        assert page.locator(f"#table-{table} tbody tr").count() > 0
