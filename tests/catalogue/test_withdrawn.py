"""Withdrawn assets leave the default view, can be asked for, and only admins get their
files."""

from __future__ import annotations

import importlib
import io
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from catalogue.models import Asset, Entry
from catalogue.selectors import SearchFilters, entry_search
from catalogue.services import asset_publish, asset_sync, asset_withdraw, entries_sync
from generation.models import Item
from tests.conftest import logged_in, route_items


@pytest.fixture
def withdrawn(campaign, admin_user):
    """Two published images, the second withdrawn by an admin; every image indexed."""
    items = route_items(campaign, to="approved", count=2)
    assets = [asset_publish(item_id=item.pk) for item in items]
    asset_withdraw(asset=assets[1], user=admin_user, note="model release missing")
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))
    assets[1].refresh_from_db()
    return assets


def ids(**filters) -> set:
    results = entry_search(filters=SearchFilters(**filters), per_page=100, facets=False)
    return {entry.item_id for entry in results.entries}


def test_the_entry_follows_its_assets_status(withdrawn):
    published, gone = withdrawn

    assert Entry.objects.get(pk=published.item_id).asset_status == "published"
    entry = Entry.objects.get(pk=gone.item_id)
    assert (entry.asset_status, entry.published) == ("withdrawn", False)
    assert Entry.objects.filter(asset_status="").count() == 38


def test_the_default_search_leaves_withdrawn_images_out_and_a_filter_brings_them_back(withdrawn):
    published, gone = withdrawn

    assert gone.item_id not in ids() and published.item_id in ids()
    assert len(ids()) == 39
    assert gone.item_id in ids(withdrawn="include") and len(ids(withdrawn="include")) == 40
    assert ids(withdrawn="only") == {gone.item_id}
    # The status filter finds them too, alone or beside other statuses.
    assert ids(statuses=("withdrawn",)) == {gone.item_id}
    assert ids(statuses=("approved", "withdrawn")) == {published.item_id, gone.item_id}
    assert ids(statuses=("approved",)) == {published.item_id}


def test_an_undone_approval_withdraws_and_the_entry_leaves_the_default_view(withdrawn):
    published, _ = withdrawn
    Item.objects.filter(pk=published.item_id).update(status=Item.Status.REVIEW)

    asset_sync(item_id=published.item_id)

    assert Entry.objects.get(pk=published.item_id).asset_status == "withdrawn"
    assert published.item_id not in ids()
    assert published.item_id in ids(statuses=("review",), withdrawn="include")


def test_the_page_says_withdrawn_images_are_hidden_and_links_to_them(manager_client, withdrawn):
    text = manager_client.get(reverse("catalogue:search")).content.decode()

    assert "39 images" in text and "withdrawn images hidden" in text
    assert "?withdrawn=include" in text
    only = manager_client.get(reverse("catalogue:search"), {"status": "withdrawn"})
    assert only.context["results"].total == 1
    assert "Withdrawn" in only.content.decode()
    bad = manager_client.get(reverse("catalogue:search"), {"withdrawn": "sometimes"})
    assert bad.status_code == 400 and "withdrawn" in bad.context["form"].errors


def test_the_command_line_leaves_them_out_unless_asked(withdrawn):
    def run(*args) -> dict:
        out = io.StringIO()
        call_command("catalogue_search", *args, "--json", "--limit", "100", stdout=out)
        return json.loads(out.getvalue())

    gone = str(withdrawn[1].item_id)
    assert gone not in {row["item_id"] for row in run()["results"]}
    (row,) = run("--withdrawn", "only")["results"]
    assert row["item_id"] == gone and row["asset_status"] == "withdrawn"
    assert run("--status", "withdrawn")["count"] == 1
    assert run("--withdrawn", "include")["count"] == 40


@pytest.mark.parametrize("persona", ["creative", "reviewer", "manager"])
def test_only_an_admin_gets_a_withdrawn_assets_files(client, request, persona, withdrawn):
    published, gone = withdrawn
    logged_in(client, request.getfixturevalue(persona))

    for name in (gone.image.name, gone.thumbnail.name):
        assert client.get(reverse("catalogue:media", args=[name])).status_code == 403
    assert client.get(reverse("catalogue:asset_download", args=[gone.pk])).status_code == 403
    # A published asset's files are every role's.
    for name in (published.image.name, published.thumbnail.name):
        assert client.get(reverse("catalogue:media", args=[name])).status_code == 200


def test_an_admin_gets_a_withdrawn_assets_files(client, admin_user, withdrawn):
    gone = withdrawn[1]
    logged_in(client, admin_user)

    for name in (gone.image.name, gone.thumbnail.name):
        assert client.get(reverse("catalogue:media", args=[name])).status_code == 200
    assert client.get(reverse("catalogue:asset_download", args=[gone.pk])).status_code == 200


def test_an_image_back_in_review_is_the_review_queues_again_but_not_its_thumbnail(
    client, reviewer, withdrawn
):
    published, _ = withdrawn
    Item.objects.filter(pk=published.item_id).update(status=Item.Status.REVIEW)
    asset_sync(item_id=published.item_id)  # the approval was undone: withdrawn
    published.refresh_from_db()
    logged_in(client, reviewer)

    assert published.status == Asset.Status.WITHDRAWN
    assert client.get(reverse("catalogue:media", args=[published.image.name])).status_code == 200
    thumbnail = reverse("catalogue:media", args=[published.thumbnail.name])
    assert client.get(thumbnail).status_code == 403


def test_the_asset_page_shows_no_withdrawn_image_to_other_roles(
    client, manager, admin_user, withdrawn
):
    gone = withdrawn[1]
    url = reverse("catalogue:asset", args=[gone.pk])
    image = reverse("catalogue:media", args=[gone.image.name])

    text = logged_in(client, manager).get(url).content.decode()
    assert image not in text and "only an admin may see this image" in text
    assert image in logged_in(client, admin_user).get(url).content.decode()


def test_the_migration_fills_in_the_status_of_every_entrys_asset(withdrawn):
    migration = importlib.import_module(
        "catalogue.migrations.0006_entry_asset_status_without_asset_search"
    )
    Entry.objects.update(asset_status="")

    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL)

    statuses = dict(Entry.objects.exclude(asset_status="").values_list("pk", "asset_status"))
    assert statuses == {withdrawn[0].item_id: "published", withdrawn[1].item_id: "withdrawn"}


def test_the_campaign_page_shows_no_withdrawn_image_to_other_roles(
    client, manager, admin_user, campaign, withdrawn
):
    gone = withdrawn[1]
    url = reverse("generation:campaign", args=[campaign.pk])
    thumbnail = reverse("catalogue:media", args=[gone.thumbnail.name])
    image = reverse("catalogue:media", args=[gone.image.name])

    text = logged_in(client, manager).get(url).content.decode()
    assert thumbnail not in text and image not in text and "Withdrawn" in text
    assert thumbnail in logged_in(client, admin_user).get(url).content.decode()
