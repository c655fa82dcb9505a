"""The catalogue page: search over every image with filters, facets and pages."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from catalogue.models import Entry
from catalogue.services import entries_sync
from review.models import QualityResult
from tests.conftest import route_items

HTMX = {"HTTP_HX_REQUEST": "true"}


def _index(campaign) -> None:
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))


def get(client, headers=None, **params):
    return client.get(reverse("catalogue:search"), params, **(headers or {}))


def page(client, **params) -> str:
    response = get(client, **params)
    assert response.status_code == 200, response.content[:500]
    return html.unescape(response.content.decode())


@pytest.fixture
def indexed(campaign):
    """Two images rejected (one for blur), one in review, one published, the rest queued."""
    from catalogue.services import asset_publish

    rejected = route_items(campaign, to="rejected", count=2)
    QualityResult.objects.filter(item=rejected[0]).update(reason_codes=["blur"])
    QualityResult.objects.filter(item=rejected[1]).update(reason_codes=["exposure"])
    route_items(campaign, to="review", count=1)
    (approved,) = route_items(campaign, to="approved", count=1)
    asset_publish(item_id=approved.pk)
    _index(campaign)
    return campaign


@pytest.mark.parametrize("persona", ["creative", "reviewer", "manager", "admin_user"])
def test_every_role_may_search_the_catalogue(client, request, persona, indexed):
    client.force_login(request.getfixturevalue(persona))

    text = page(client)

    assert "40 images" in text
    assert "SH-1001 · Aero Runner" in text


def test_anonymous_users_are_sent_to_login(client, db):
    response = get(client)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_filters_combine_with_text(manager_client, indexed):
    rejected = Entry.objects.filter(status="rejected")
    blurred = rejected.get(reason_codes__contains=["blur"])

    text = page(manager_client, q=blurred.title.split(" · ")[1], status="rejected", reason="blur")

    assert "1 image," in text
    assert blurred.title in text
    assert "Blurry" in text
    assert "Rejected" in text
    assert "1 image" in page(manager_client, status="rejected", reason="exposure")
    assert "0 images" in page(manager_client, q="zeppelin", status="rejected")
    assert "No images match." in page(manager_client, q="zeppelin")


def test_several_statuses_may_be_asked_for_at_once(manager_client, indexed):
    text = page(manager_client, status=["rejected", "review"])

    assert "3 images" in text


def test_a_published_card_links_to_its_asset_and_others_show_their_status(
    manager_client, admin_user, indexed
):
    from catalogue.models import Asset

    asset = Asset.objects.get()
    text = page(manager_client)

    assert reverse("catalogue:asset", args=[asset.pk]) in text
    assert reverse("catalogue:media", args=[asset.thumbnail.name]) in text
    assert "Published" in text and "In review" in text and "Queued" in text

    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.WITHDRAWN)
    _index(indexed)
    assert asset.title not in page(manager_client, status="approved")  # left out by default
    text = page(manager_client, status="approved", withdrawn="include")
    assert "Withdrawn" in text and asset.title in text
    # Its files are for admins only: others see a placeholder, an admin the item's own file.
    assert reverse("catalogue:media", args=[asset.item.image.name]) not in text
    assert "Withdrawn: only admins see it" in text
    manager_client.force_login(admin_user)
    text = page(manager_client, status="approved", withdrawn="include")
    assert reverse("catalogue:media", args=[asset.item.image.name]) in text


def test_facets_count_the_current_set_and_link_to_narrow_it(manager_client, indexed):
    response = get(manager_client, status="rejected")
    groups = {g["name"]: g for g in response.context["facet_groups"]}

    reasons = {v["label"]: v for v in groups["reason"]["values"]}
    assert {label: v["count"] for label, v in reasons.items()} == {
        "Blurry": 1,
        "Badly exposed": 1,
    }
    assert {v["label"]: v["count"] for v in groups["status"]["values"]} == {"Rejected": 2}
    assert {"campaign", "model"} <= set(groups)
    href = reasons["Blurry"]["href"]
    assert "reason=blur" in href and "status=rejected" in href and "page" not in href
    text = html.unescape(response.content.decode())
    assert href in text

    narrowed = manager_client.get(reverse("catalogue:search") + href)
    assert narrowed.context["results"].total == 1


def test_a_model_or_campaign_facet_narrows_by_its_value(manager_client, indexed, campaign):
    response = get(manager_client)
    groups = {g["name"]: g for g in response.context["facet_groups"]}

    (model,) = groups["model"]["values"]
    assert model["label"] == "sd15 v1" and model["count"] == 40
    assert "model=sd15%3A1" in model["href"]
    (camp,) = groups["campaign"]["values"]
    assert camp["label"] == "Spring shoes" and f"campaign={campaign.pk}" in camp["href"]
    assert get(manager_client, model="sd15:1").context["results"].total == 40
    assert get(manager_client, model="sd15:2").context["results"].total == 0
    assert get(manager_client, model="sd15").context["results"].total == 40


def test_active_filters_are_shown_each_with_a_link_that_removes_it(manager_client, indexed):
    response = get(manager_client, q="sneaker", status="rejected", reason="blur")
    active = {a["field"]: a for a in response.context["active_filters"]}

    assert active["Reason"]["value"] == "Blurry"
    assert active["Status"]["value"] == "Rejected"
    removed = active["Reason"]["href"]
    assert "reason" not in removed and "status=rejected" in removed and "q=sneaker" in removed
    assert removed in html.unescape(response.content.decode())


@pytest.mark.parametrize(
    ("params", "field", "accepts"),
    [
        ({"status": "lost"}, "status", "queued"),
        ({"reason": "ugly"}, "reason", "blur"),
        ({"verdict": "maybe"}, "verdict", "approved"),
        ({"campaign": "not-a-uuid"}, "campaign", "UUID"),
        ({"template": "x"}, "template", "whole number"),
        ({"model": "sd15:one"}, "model", "NAME:VERSION"),
        ({"lora": "style:"}, "lora", "NAME:VERSION"),
        ({"purpose": "poster"}, "purpose", "hero"),
        ({"rights": "all"}, "rights", "unrestricted"),
        ({"published": "maybe"}, "published", "yes, no or any"),
        ({"since": "31/12/2026"}, "since", "YYYY-MM-DD"),
        ({"month": "2026-13"}, "month", "YYYY-MM"),
        ({"approved_until": "yesterday"}, "approved_until", "YYYY-MM-DD"),
        ({"min_score": "1.5"}, "min_score", "from 0 to 1"),
        ({"max_score": "nan"}, "max_score", "from 0 to 1"),
        ({"min_cost": "-1"}, "min_cost", "number"),
        ({"sort": "random"}, "sort", "relevance, newest, score, cost"),
        ({"page": "0"}, "page", "page number"),
        ({"since": "2026-05-01", "until": "2026-04-01"}, "until", "no lower"),
        ({"min_score": "0.9", "max_score": "0.1"}, "max_score", "no lower"),
    ],
)
def test_a_bad_value_is_a_message_on_its_field_and_a_400(
    manager_client, db, params, field, accepts
):
    response = get(manager_client, **params)

    assert response.status_code == 400
    text = html.unescape(response.content.decode())
    assert f"<code>{field}</code>" in text
    assert accepts in text
    assert "No images match." not in text
    assert field in response.context["form"].errors


@pytest.mark.parametrize(
    "query",
    [
        '"unclosed',
        "\\",
        "a\\'b\"c",
        "& | ! : * ( ) <-> ''",
        "!!!",
        "-",
        "OR OR OR",
        "sneaker:*",
        "👟 sneaker 🔥",
        "أحذية رياضية",
        "שלום",
        "\u202eevil\u202c",
        "%00%27",
        "x" * 2000,
        "sneaker " * 250,
    ],
)
def test_nasty_queries_are_answered(manager_client, indexed, query):
    response = get(manager_client, q=query)

    assert response.status_code == 200
    assert "images" in response.content.decode() or "image," in response.content.decode()


def test_a_10_kb_query_is_refused_with_a_message_not_a_500(manager_client, indexed):
    response = get(manager_client, q="sneaker " * 1300)

    assert response.status_code == 400
    assert "at most 2000 characters" in response.content.decode()


def test_a_null_character_in_the_query_is_a_field_message(manager_client, indexed):
    response = get(manager_client, q="sneaker\x00boot")

    assert response.status_code == 400
    assert "q" in response.context["form"].errors


def test_pagination_reaches_page_2_and_keeps_the_filters(manager_client, campaign):
    _index(campaign)
    first = get(manager_client, status="queued", sort="newest")
    results = first.context["results"]
    assert results.total == 40 and results.pages == 1

    Entry.objects.update(status="queued")
    from catalogue import views

    views_per_page = views.SEARCH_PER_PAGE
    try:
        views.SEARCH_PER_PAGE = 15
        one = get(manager_client, status="queued", sort="newest")
        text = html.unescape(one.content.decode())
        assert "Page 1 of 3" in text
        assert 'href="?status=queued&sort=newest&page=2"' in text
        two = get(manager_client, status="queued", sort="newest", page="2")
        assert "Page 2 of 3" in two.content.decode()
        seen = {e.item_id for e in one.context["results"].entries}
        later = {e.item_id for e in two.context["results"].entries}
        assert len(later) == 15 and not seen & later
        # A page past the end is the last one, not an empty list that looks like no results.
        assert get(manager_client, status="queued", page="99").context["results"].page == 3
    finally:
        views.SEARCH_PER_PAGE = views_per_page


def test_sort_links_keep_the_filters_and_the_match_score_shows_as_a_percentage(
    manager_client, indexed
):
    response = get(manager_client, q="sneaker", model="sd15")
    text = html.unescape(response.content.decode())
    results = response.context["results"]

    assert results.ranked
    assert "best match first" in text
    assert f"{round(results.entries[0].rank * 100)}% match" in text
    assert 'href="?q=sneaker&model=sd15&sort=newest"' in text
    assert "newest first" in page(manager_client, q="sneaker", sort="newest")


def test_an_htmx_search_gets_only_the_results_fragment(manager_client, indexed):
    response = get(manager_client, HTMX, q="sneaker")
    fragment = response.content.decode()

    assert fragment.lstrip().startswith('<section id="results"')
    assert "<html" not in fragment
    assert "Aero Runner" in fragment


def test_an_htmx_search_with_a_bad_value_shows_the_message_in_the_fragment(manager_client, db):
    response = get(manager_client, HTMX, status="lost")

    # htmx swaps no 4xx response by default, so the fragment answers 200 with the message.
    assert response.status_code == 200
    assert "<code>status</code>" in response.content.decode()
