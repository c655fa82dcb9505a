"""Rights that expire soon are found by a filter; expired rights are flagged wherever the
asset shows: the search's cards, the asset page and catalogue_search --json."""

from __future__ import annotations

import html
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from catalogue.models import Entry
from catalogue.selectors import SearchFilters, entry_search
from catalogue.services import asset_publish, assets_rights_set, entries_sync
from tests.conftest import route_items


@pytest.fixture
def dated(campaign, manager):
    """Four published images whose rights ended yesterday, end today, in 30 days and in
    31 days; the rest of the campaign indexed, without rights."""
    today = timezone.localdate()
    items = route_items(campaign, to="approved", count=4)
    assets = [asset_publish(item_id=item.pk) for item in items]
    for asset, days in zip(assets, (-1, 0, 30, 31), strict=True):
        assets_rights_set(
            assets=[asset], user=manager, licence="campaign", valid_until=today + timedelta(days)
        )
        asset.refresh_from_db()
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))
    return dict(zip(("expired", "today", "in30", "in31"), assets, strict=True))


def ids(**filters) -> set:
    results = entry_search(filters=SearchFilters(**filters), per_page=100, facets=False)
    return {entry.item_id for entry in results.entries}


def test_rights_expiring_within_n_days_are_found_not_those_already_expired(dated):
    assert ids(rights_expiring_days=30) == {dated["today"].item_id, dated["in30"].item_id}
    assert ids(rights_expiring_days=0) == {dated["today"].item_id}
    assert ids(rights_expiring_days=31) == {
        dated[name].item_id for name in ("today", "in30", "in31")
    }
    assert ids(rights_expired=True) == {dated["expired"].item_id}
    assert dated["expired"].item_id not in ids(rights_expired=False)
    assert len(ids(rights_expired=False)) == 39  # no end date is not expired


def test_the_entry_keeps_the_assets_end_date_in_step(dated, manager):
    asset = dated["in31"]
    assets_rights_set(assets=[asset], user=manager, licence="unrestricted")

    entry = Entry.objects.get(pk=asset.item_id)
    assert (entry.rights, entry.rights_until) == ("unrestricted", None)


def test_the_page_filters_by_expiry_keeps_it_in_the_url_and_flags_expired_cards(
    manager_client, dated
):
    response = manager_client.get(reverse("catalogue:search"), {"rights_expiring": "30"})
    text = html.unescape(response.content.decode())

    assert response.context["results"].total == 2
    (active,) = response.context["active_filters"]
    assert active["field"] == "Rights expire within (days)" and active["value"] == "30"
    assert 'href="?rights_expiring=30&sort=newest"' in text  # the sort links keep it
    assert "Rights end" in text

    everything = html.unescape(manager_client.get(reverse("catalogue:search")).content.decode())
    yesterday = dated["expired"].rights_until
    assert everything.count(f"Rights expired {yesterday:%Y-%m-%d}") == 1
    assert "?rights_expiring=30" in everything  # the quick link, 30 days


@pytest.mark.parametrize("value", ["soon", "-1", "3651", "1.5"])
def test_a_bad_number_of_days_is_a_message_on_its_field(manager_client, db, value):
    response = manager_client.get(reverse("catalogue:search"), {"rights_expiring": value})

    assert response.status_code == 400
    assert "<code>rights_expiring</code>" in response.content.decode()
    assert "whole number of days from 0 to 3650" in response.content.decode()


def test_the_asset_page_flags_expired_rights(manager_client, dated):
    page = manager_client.get(reverse("catalogue:asset", args=[dated["expired"].pk]))
    text = page.content.decode()

    assert f"Rights expired {dated['expired'].rights_until:%Y-%m-%d}" in text
    later = manager_client.get(reverse("catalogue:asset", args=[dated["in31"].pk]))
    assert "Rights expired" not in later.content.decode()


def run_json(*args) -> dict:
    out = io.StringIO()
    call_command("catalogue_search", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_the_command_line_filters_by_expiry_and_flags_expired_rights(dated):
    out = run_json("--rights-expiring", "30")

    assert {row["item_id"] for row in out["results"]} == {
        str(dated["today"].item_id),
        str(dated["in30"].item_id),
    }
    rows = {row["item_id"]: row for row in run_json("--status", "approved")["results"]}
    expired = rows[str(dated["expired"].item_id)]
    assert expired["rights_expired"] is True
    assert expired["rights_until"] == dated["expired"].rights_until.isoformat()
    assert rows[str(dated["in31"].item_id)]["rights_expired"] is False


@pytest.mark.parametrize("value", ["soon", "-3", "99999"])
def test_a_bad_rights_expiring_option_exits_2_naming_it(db, value):
    with pytest.raises(CommandError) as error:
        call_command("catalogue_search", "--rights-expiring", value, stdout=io.StringIO())

    assert error.value.returncode == 2
    assert str(error.value).startswith("--rights-expiring: ")
    assert "from 0 to 3650" in str(error.value)


def test_the_campaign_page_flags_an_asset_whose_rights_expired(manager_client, campaign):
    from datetime import date

    from django.urls import reverse

    from catalogue.models import Asset
    from catalogue.services import asset_publish
    from tests.conftest import route_items

    (item,) = route_items(campaign, to="approved", count=1)
    asset = asset_publish(item_id=item.pk)
    Asset.objects.filter(pk=asset.pk).update(rights_until=date(2020, 1, 31))
    page = manager_client.get(reverse("generation:campaign", args=[campaign.pk]))
    assert "Rights expired 2020-01-31" in page.content.decode()
