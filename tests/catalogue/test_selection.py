"""Bulk actions on the catalogue's search page: creatives and managers tick results, or take
every result of the search, and add or remove tags or set usage rights on them."""

from __future__ import annotations

import html
from datetime import date
from urllib.parse import urlencode

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from catalogue import services
from catalogue.models import Asset, Entry, RightsChange
from catalogue.selectors import SearchFilters, entries_filtered
from catalogue.services import asset_publish, asset_withdraw, entries_sync, entries_tags_edit
from tests.conftest import route_items

TAGS_URL = "catalogue:selection_tags"
RIGHTS_URL = "catalogue:selection_rights"


@pytest.fixture
def indexed(campaign, admin_user):
    """Three published images (one then withdrawn), two rejected, the rest queued."""
    approved = route_items(campaign, to="approved", count=3)
    assets = [asset_publish(item_id=item.pk) for item in approved]
    asset_withdraw(asset=assets[2], user=admin_user)
    route_items(campaign, to="rejected", count=2)
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))
    return assets


def post(client, name, search="", **data):
    return client.post(reverse(name), {"search": search, **data})


def notes(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def tags_of(item_id) -> set[str]:
    return set(Entry.objects.get(pk=item_id).tag_names)


def test_the_search_page_offers_creatives_checkboxes_and_all_results_of_the_search(
    creative_client, indexed
):
    response = creative_client.get(reverse("catalogue:search"), {"status": "rejected"})
    text = html.unescape(response.content.decode())

    assert text.count('type="checkbox" name="selected"') == 2
    assert "All 2 results of this search" in text
    assert 'name="search" value="status=rejected"' in text
    assert reverse(TAGS_URL) in text and reverse(RIGHTS_URL) in text


def test_a_reviewer_sees_no_selection_and_may_not_post_one(reviewer_client, indexed):
    text = reviewer_client.get(reverse("catalogue:search")).content.decode()
    assert 'name="selected"' not in text and reverse(TAGS_URL) not in text

    item_id = indexed[0].item_id
    assert post(reviewer_client, TAGS_URL, selected=item_id, add="x").status_code == 403
    response = post(reviewer_client, RIGHTS_URL, selected=item_id, licence="unrestricted")
    assert response.status_code == 403
    assert "x" not in tags_of(item_id) and not RightsChange.objects.exists()


def test_an_outsider_gets_403_and_an_anonymous_user_is_sent_to_login(client, outsider, indexed):
    response = post(client, TAGS_URL, selected=indexed[0].item_id, add="x")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))

    client.force_login(outsider)
    assert post(client, TAGS_URL, selected=indexed[0].item_id, add="x").status_code == 403
    assert post(client, RIGHTS_URL, licence="internal").status_code == 403


def test_the_actions_are_post_only(creative_client, db):
    assert creative_client.get(reverse(TAGS_URL)).status_code == 405
    assert creative_client.get(reverse(RIGHTS_URL)).status_code == 405


def test_tags_on_the_ticked_images_and_back_to_the_same_search(creative_client, indexed):
    ticked = [indexed[0].item_id, indexed[1].item_id]
    search = "q=sneaker&status=approved&page=1"

    response = post(
        creative_client,
        TAGS_URL,
        search,
        scope="selected",
        selected=ticked,
        add="Hero Shot, summer",
        remove="footwear",
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("catalogue:search") + "?" + search
    assert notes(response) == ["Tags on 2 images: added hero shot, summer; removed footwear."]
    for item_id in ticked:
        assert {"hero shot", "summer"} <= tags_of(item_id) and "footwear" not in tags_of(item_id)
    untouched = Entry.objects.exclude(pk__in=ticked)
    assert not untouched.filter(tag_names__contains=["hero shot"]).exists()
    # The edits are the person's: indexing again keeps them.
    entries_sync(item_ids=ticked)
    assert all("hero shot" in tags_of(item_id) for item_id in ticked)


def test_all_results_of_the_search_are_changed_in_batches_not_only_one_page(
    creative_client, campaign, indexed, monkeypatch
):
    monkeypatch.setattr(services, "INDEX_BATCH", 4)  # 37 unpublished images: ten batches
    search = urlencode({"q": "footwear", "published": "no", "page": "2"})
    expected = set(
        entries_filtered(query="footwear", filters=SearchFilters(published=False)).values_list(
            "pk", flat=True
        )
    )
    assert len(expected) > 4 and not expected & {a.item_id for a in indexed}

    response = post(creative_client, TAGS_URL, search, scope="all", add="batch-tagged")

    assert response.status_code == 302
    assert notes(response) == [f"Tags on {len(expected)} images: added batch-tagged."]
    tagged = set(
        Entry.objects.filter(tag_names__contains=["batch-tagged"]).values_list("pk", flat=True)
    )
    assert tagged == expected


def test_removing_a_tag_from_all_results_of_a_search_for_it_reaches_every_one(
    creative_client, campaign, indexed, monkeypatch
):
    # The search matches on the very tag being removed: each batch must still be the search's.
    monkeypatch.setattr(services, "INDEX_BATCH", 3)
    all_ids = list(campaign.items.values_list("pk", flat=True))
    entries_tags_edit(item_ids=all_ids, add=["zebrapattern"])

    response = post(creative_client, TAGS_URL, "q=zebrapattern", scope="all", remove="zebrapattern")

    assert response.status_code == 302
    assert notes(response) == ["Tags on 39 images: removed zebrapattern."]
    # Every result lost it; only the withdrawn image, which the search leaves out, keeps it.
    still = Entry.objects.filter(tag_names__contains=["zebrapattern"])
    assert list(still.values_list("pk", flat=True)) == [indexed[2].item_id]


def test_rights_on_a_selection_change_published_ones_and_count_the_skipped(
    manager_client, manager, indexed
):
    published, withdrawn = indexed[:2], indexed[2]
    queued = Entry.objects.filter(status="queued").first()
    ticked = [a.item_id for a in indexed] + [queued.pk]

    response = post(
        manager_client,
        RIGHTS_URL,
        "status=approved",
        scope="selected",
        selected=ticked,
        licence="campaign",
        channels="web, instagram",
        territories="gb, vn",
        valid_until="2030-06-30",
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("catalogue:search") + "?status=approved"
    assert notes(response) == [
        "Usage rights set on 2 images. Skipped 2: 1 not published (only a published image "
        "has rights); 1 withdrawn."
    ]
    for asset in published:
        asset.refresh_from_db()
        assert (asset.rights, asset.rights_territories) == ("campaign", ["GB", "VN"])
        assert asset.rights_set_by == manager
        (change,) = RightsChange.objects.filter(asset=asset)
        assert change.before["rights"] == "internal" and change.after["rights"] == "campaign"
        entry = Entry.objects.get(pk=asset.item_id)
        assert (entry.rights, entry.rights_until) == ("campaign", date(2030, 6, 30))
    withdrawn.refresh_from_db()
    assert withdrawn.rights == "internal" and not withdrawn.rights_changes.exists()


def test_rights_on_all_results_of_a_search(manager_client, campaign, indexed):
    response = post(
        manager_client, RIGHTS_URL, "withdrawn=include", scope="all", licence="unrestricted"
    )

    assert response.status_code == 302
    (message,) = notes(response)
    assert message == (
        "Usage rights set on 2 images. Skipped 38: 37 not published (only a published image "
        "has rights); 1 withdrawn."
    )
    assert RightsChange.objects.count() == 2


def test_a_selection_without_a_published_image_warns_that_nothing_changed(manager_client, indexed):
    queued = list(Entry.objects.filter(status="queued").values_list("pk", flat=True)[:2])

    response = post(manager_client, RIGHTS_URL, selected=queued, licence="unrestricted")

    assert response.status_code == 302
    assert notes(response)[0].startswith("Usage rights set on 0 images. Skipped 2: 2 not")
    assert not RightsChange.objects.exists()


@pytest.mark.parametrize(
    ("url", "data", "field", "says"),
    [
        (TAGS_URL, {"add": " , "}, "add", "name at least one tag"),
        (TAGS_URL, {"add": "x" * 101}, "add", "at most 100 characters"),
        (TAGS_URL, {"add": "x", "selected": []}, "selected", "Tick at least one image"),
        (TAGS_URL, {"add": "x", "selected": ["not-an-id"]}, "selected", "not an image id"),
        (TAGS_URL, {"add": "x", "scope": "everything"}, "scope", "selected or all"),
        (TAGS_URL, {"add": "x", "scope": "all", "search": "status=lost"}, "search", "Status"),
        (RIGHTS_URL, {"licence": "everything"}, "licence", "not one of the available choices"),
        (RIGHTS_URL, {"licence": "custom"}, "custom", "write the licence"),
        (RIGHTS_URL, {"licence": "campaign", "territories": "Narnia"}, "territories", "NARNIA"),
        (RIGHTS_URL, {"licence": "campaign", "channels": "fax"}, "channels", "fax"),
        (
            RIGHTS_URL,
            {"licence": "campaign", "valid_from": "2030-01-02", "valid_until": "2030-01-01"},
            "valid_until",
            "before valid_from",
        ),
        (RIGHTS_URL, {"licence": "campaign", "valid_until": "soon"}, "valid_until", "date"),
    ],
)
def test_bad_input_is_a_message_naming_the_field_and_nothing_changes(
    creative_client, indexed, url, data, field, says
):
    data = {"scope": "selected", "selected": [a.item_id for a in indexed[:2]]} | data
    before = {e.pk: (e.tag_names, e.rights) for e in Entry.objects.all()}

    response = post(creative_client, url, data.pop("search", "q=sneaker"), **data)

    assert response.status_code == 400
    text = html.unescape(response.content.decode())
    assert f"<code>{field}</code>" in text and says in text
    assert before == {e.pk: (e.tag_names, e.rights) for e in Entry.objects.all()}
    assert not RightsChange.objects.exists()
    assert set(Asset.objects.values_list("rights", flat=True)) == {"internal"}


def test_a_refused_action_shows_the_same_search_with_the_images_still_ticked(
    creative_client, indexed
):
    ticked = indexed[0].item_id

    response = post(creative_client, TAGS_URL, "status=approved", selected=[ticked], add="")

    assert response.status_code == 400
    assert response.context["results"].total == 2  # the search, withdrawn left out
    assert f'value="{ticked}" form="selection" aria-label' in response.content.decode()
    assert "checked" in response.content.decode().split(f'value="{ticked}"')[1][:120]


def test_a_selection_is_one_transaction_a_failure_in_a_later_batch_undoes_the_first(
    campaign, indexed, monkeypatch
):
    monkeypatch.setattr(services, "INDEX_BATCH", 5)
    calls = []
    real_sync = services.entries_sync

    def failing_sync(*, item_ids):
        calls.append(len(item_ids))
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real_sync(item_ids=item_ids)

    monkeypatch.setattr(services, "entries_sync", failing_sync)
    ids = list(campaign.items.values_list("pk", flat=True))

    with pytest.raises(RuntimeError):
        entries_tags_edit(item_ids=ids, add=["half"])

    assert calls == [5, 5]
    assert not Entry.objects.filter(tags_added__contains=["half"]).exists()
    assert not Entry.objects.filter(tag_names__contains=["half"]).exists()


def test_indexing_any_number_of_images_takes_the_same_few_queries(
    campaign, indexed, django_assert_max_num_queries
):
    ids = list(campaign.items.values_list("pk", flat=True))
    entries_tags_edit(item_ids=ids[:5], add=["kept"])

    # Items with everything an entry shows, the people's tag edits, one upsert (and, inside
    # the test's transaction, a savepoint and its release).
    with django_assert_max_num_queries(5):
        assert entries_sync(item_ids=ids[:1]) == 1
    with django_assert_max_num_queries(5):
        assert entries_sync(item_ids=ids) == 40

    assert Entry.objects.filter(tag_names__contains=["kept"]).count() == 5
    assert Entry.objects.get(pk=indexed[2].item_id).asset_status == "withdrawn"


def test_tags_and_rights_on_a_whole_selection_take_a_few_queries_per_batch(
    campaign, indexed, manager, django_assert_max_num_queries
):
    ids = list(campaign.items.values_list("pk", flat=True))

    with django_assert_max_num_queries(10):
        assert entries_tags_edit(item_ids=ids, add=["bulk"]) == 40
    with django_assert_max_num_queries(10):
        counts = services.entries_rights_set(item_ids=ids, user=manager, licence="unrestricted")
    assert counts == {"changed": 2, "not_published": 37, "withdrawn": 1}
