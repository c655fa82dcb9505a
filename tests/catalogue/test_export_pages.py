"""The export pages: the list, creating from a campaign or a search, the detail with its
progress, and the download; who may do what."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from catalogue.delivery.exports import export_create
from catalogue.jobs import build_export
from catalogue.models import Export
from catalogue.services import entries_sync
from tests.catalogue.exports_support import published
from tests.conftest import logged_in, make_user


@pytest.fixture
def three(campaign):
    assets = published(campaign, 3)
    entries_sync(item_ids=[a.item_id for a in assets])
    return assets


def _ready(export: Export) -> Export:
    build_export([str(export.pk)])
    export.refresh_from_db()
    return export


def test_a_creative_lists_their_own_exports_and_a_manager_sees_everyones(
    client, campaign, creative, manager, three, handoffs
):
    mine = export_create(user=creative, campaign=campaign)
    other = make_user("cleo", "creative")
    theirs = export_create(user=other, campaign=campaign)

    page = logged_in(client, creative).get(reverse("catalogue:exports"))
    assert page.status_code == 200
    assert reverse("catalogue:export", args=[mine.pk]) in page.text
    assert reverse("catalogue:export", args=[theirs.pk]) not in page.text
    assert 'hx-trigger="every 3s"' in page.text  # queued: the list polls

    page = logged_in(client, manager).get(reverse("catalogue:exports"))
    assert reverse("catalogue:export", args=[theirs.pk]) in page.text


def test_the_list_stops_polling_and_offers_the_download_when_ready(
    creative_client, campaign, creative, three
):
    export = _ready(export_create(user=creative, campaign=campaign))
    page = creative_client.get(reverse("catalogue:exports"))
    assert reverse("catalogue:export_download", args=[export.pk]) in page.text
    assert "every 3s" not in page.text
    partial = creative_client.get(reverse("catalogue:exports"), headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<section id="exports"')


@pytest.mark.parametrize("who", ["reviewer", "outsider"])
def test_reviewers_and_users_without_a_role_may_not_export(client, who, request, campaign, three):
    logged_in(client, request.getfixturevalue(who))
    assert client.get(reverse("catalogue:exports")).status_code == 403
    response = client.post(reverse("catalogue:export_new"), {"campaign": str(campaign.pk)})
    assert response.status_code == 403
    assert Export.objects.count() == 0


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("catalogue:exports"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_campaign_page_button_queues_an_export_of_the_campaign(
    creative_client, campaign, three, handoffs
):
    page = creative_client.get(reverse("generation:campaign", args=[campaign.pk]))
    assert reverse("catalogue:export_new") in page.text
    response = creative_client.post(
        reverse("catalogue:export_new"), {"campaign": str(campaign.pk), "layout": "game-engine"}
    )
    export = Export.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("catalogue:export", args=[export.pk])
    assert export.campaign == campaign and export.layout == "game-engine"
    assert export.total == 3


def test_the_search_page_button_exports_every_result_of_the_current_search(
    creative_client, campaign, three, handoffs
):
    page = creative_client.get(reverse("catalogue:search"), {"q": "sneaker", "page": "1"})
    assert reverse("catalogue:export_new") in page.text
    assert 'name="search" value="q=sneaker&amp;page=1"' in page.text
    response = creative_client.post(
        reverse("catalogue:export_new"), {"search": "q=sneaker&page=1", "include_expired": "on"}
    )
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.search == {"q": "sneaker"} and export.include_expired


@pytest.mark.parametrize(
    "data, says",
    [
        ({"search": "min_score=lots"}, "min_score"),
        ({"search": "q=helicopter"}, "nothing to export"),
        ({}, "either a campaign or a search"),
        ({"campaign": "not-a-uuid"}, "campaign id"),
        ({"campaign": "00000000-0000-0000-0000-000000000000"}, "no such campaign"),
        ({"search": "", "layout": "unity"}, "not a layout"),
    ],
)
def test_bad_input_is_a_400_that_says_what_is_wrong(creative_client, three, data, says):
    response = creative_client.post(reverse("catalogue:export_new"), data)
    assert response.status_code == 400
    assert says in response.text
    assert Export.objects.count() == 0


def test_the_detail_page_shows_progress_and_polls_while_building(
    creative_client, campaign, creative, three, handoffs
):
    export = export_create(user=creative, campaign=campaign)
    Export.objects.filter(pk=export.pk).update(status="building", done=1)
    page = creative_client.get(reverse("catalogue:export", args=[export.pk]))
    assert page.status_code == 200
    assert "1/3" in page.text and 'hx-trigger="every 2s"' in page.text
    partial = creative_client.get(
        reverse("catalogue:export", args=[export.pk]), headers={"HX-Request": "true"}
    )
    assert partial.text.lstrip().startswith('<section id="progress"')


def test_the_detail_page_lists_what_was_left_out(creative_client, campaign, creative, three):
    three[0].renditions.all().delete()
    export = _ready(export_create(user=creative, campaign=campaign))
    page = creative_client.get(reverse("catalogue:export", args=[export.pk]))
    assert "not delivered yet" in page.text
    assert "every 2s" not in page.text


def test_another_creatives_export_is_not_found(client, campaign, creative, three, handoffs):
    export = export_create(user=creative, campaign=campaign)
    logged_in(client, make_user("cleo", "creative"))
    assert client.get(reverse("catalogue:export", args=[export.pk])).status_code == 404
    assert client.get(reverse("catalogue:export_download", args=[export.pk])).status_code == 404


def test_a_ready_export_downloads_as_a_zip_under_a_human_name(
    creative_client, campaign, creative, three
):
    export = _ready(export_create(user=creative, campaign=campaign))
    response = creative_client.get(reverse("catalogue:export_download", args=[export.pk]))
    assert response.status_code == 200
    assert 'filename="spring-shoes-' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert "manifest.csv" in zipfile.ZipFile(io.BytesIO(body)).namelist()


def test_an_export_that_is_not_ready_or_expired_cannot_be_downloaded(
    creative_client, campaign, creative, three, handoffs
):
    export = export_create(user=creative, campaign=campaign)
    url = reverse("catalogue:export_download", args=[export.pk])
    assert creative_client.get(url).status_code == 404
    Export.objects.filter(pk=export.pk).update(status="expired")
    assert creative_client.get(url).status_code == 404
    page = creative_client.get(reverse("catalogue:export", args=[export.pk]))
    assert "expired" in page.text


def test_a_manager_may_download_a_creatives_export(client, campaign, creative, manager, three):
    export = _ready(export_create(user=creative, campaign=campaign))
    logged_in(client, manager)
    url = reverse("catalogue:export_download", args=[export.pk])
    assert client.get(url).status_code == 200
