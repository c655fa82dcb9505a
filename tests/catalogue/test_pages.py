"""Catalogue search, the asset page with its provenance, and the protected media view."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from catalogue.models import Asset
from catalogue.services import entries_sync
from review.models import ReviewDecision, ReviewTask
from review.services import review_task_claim_next, review_task_decide
from tests.conftest import route_items

HTMX = {"HTTP_HX_REQUEST": "true"}


def search(client, **params) -> str:
    return client.get(reverse("catalogue:search"), params).content.decode()


@pytest.fixture
def indexed_asset(asset):
    entries_sync(item_ids=[asset.item_id])
    return asset


def test_search_finds_an_asset_by_a_word_of_its_prompt(manager_client, indexed_asset):
    page = search(manager_client, q="sneaker")

    assert reverse("catalogue:asset", args=[indexed_asset.pk]) in page
    assert indexed_asset.title in html.unescape(page)


def test_search_finds_images_that_are_not_published(manager_client, campaign):
    (item,) = route_items(campaign, to="review", count=1)
    entries_sync(item_ids=[item.pk])

    page = search(manager_client, q="sneaker")

    assert "In review" in page
    assert reverse("catalogue:media", args=[item.image.name]) in page


def test_search_does_not_find_an_asset_by_an_absent_word(manager_client, indexed_asset):
    page = search(manager_client, q="zeppelin")

    assert reverse("catalogue:asset", args=[indexed_asset.pk]) not in page
    assert "No images match." in page


def test_search_understands_websearch_syntax(manager_client, indexed_asset):
    url = reverse("catalogue:asset", args=[indexed_asset.pk])
    assert url in search(manager_client, q='"aero runner" -leather')
    assert url in search(manager_client, q="zeppelin OR mesh")
    assert url not in search(manager_client, q="sneaker -mesh")


def test_an_empty_query_lists_the_newest_images(manager_client, indexed_asset):
    page = search(manager_client)

    assert reverse("catalogue:asset", args=[indexed_asset.pk]) in page
    assert "newest first" in page


def test_search_filters_by_campaign_and_publication(manager_client, indexed_asset, campaign):
    url = reverse("catalogue:asset", args=[indexed_asset.pk])
    assert url in search(manager_client, q="sneaker", campaign=str(campaign.pk))
    assert url in search(manager_client, published="yes")

    Asset.objects.filter(pk=indexed_asset.pk).update(status=Asset.Status.WITHDRAWN)
    entries_sync(item_ids=[indexed_asset.item_id])

    assert url not in search(manager_client, q="sneaker", published="yes")
    # A withdrawn image leaves the default view; asked for, it shows as withdrawn.
    assert url not in search(manager_client, q="sneaker", published="no")
    page = search(manager_client, q="sneaker", published="no", withdrawn="include")
    assert url in page and "Withdrawn" in page


def test_an_unknown_campaign_filter_is_a_form_error_not_a_500(manager_client, indexed_asset):
    response = manager_client.get(
        reverse("catalogue:search"), {"campaign": "not-a-uuid", "q": "sneaker"}
    )

    assert response.status_code == 400
    assert b"errorlist" in response.content
    assert b"campaign id" in response.content


def test_an_htmx_search_gets_only_the_results_fragment(manager_client, indexed_asset):
    response = manager_client.get(reverse("catalogue:search"), {"q": "sneaker"}, **HTMX)
    fragment = response.content.decode()

    assert fragment.lstrip().startswith('<section id="results"')
    assert "<html" not in fragment
    assert reverse("catalogue:asset", args=[indexed_asset.pk]) in fragment


def test_the_asset_page_shows_full_provenance(manager_client, asset):
    page = manager_client.get(reverse("catalogue:asset", args=[asset.pk])).content.decode()
    item = asset.item

    assert asset.title in page
    assert item.prompt in page
    assert "Aero Runner" in page  # a CSV field
    assert "sd15 v1" in page
    assert "runwayml/stable-diffusion-v1-5" in page
    assert str(item.seed) in page
    assert "guidance_scale" in page
    assert "catalogue:1" in page  # recipe
    assert "product-photo v1" in page  # template version
    assert f"{item.quality.overall:.2f}" in page
    assert "approved automatically" in page
    assert "Internal use only" in page
    assert "Published" in page
    assert reverse("catalogue:media", args=[asset.image.name]) in page


def test_the_asset_page_shows_the_review_history(manager_client, campaign, reviewer):
    from catalogue.services import asset_publish

    route_items(campaign, to="review", count=1)
    task = review_task_claim_next(user=reviewer)
    review_task_decide(
        task_id=task.pk,
        user=reviewer,
        token=task.lease_token,
        decision="approved",
        reason="on brand",
    )
    asset = asset_publish(item_id=task.item_id)

    page = manager_client.get(reverse("catalogue:asset", args=[asset.pk])).content.decode()

    assert ReviewDecision.objects.filter(task=task).count() == 1
    assert "rui" in page
    assert "on brand" in page
    assert ReviewTask.objects.get(pk=task.pk).status == "decided"


def test_media_serves_an_item_image_to_a_reviewer(client, reviewer, campaign):
    (item,) = route_items(campaign, to="review", count=1)
    client.force_login(reviewer)

    response = client.get(reverse("catalogue:media", args=[item.image.name]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    with item.image.open("rb") as handle:
        assert b"".join(response.streaming_content) == handle.read()


def test_media_sends_anonymous_users_to_login(client, campaign):
    (item,) = route_items(campaign, to="review", count=1)

    response = client.get(reverse("catalogue:media", args=[item.image.name]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    "path",
    [
        "../pyproject.toml",
        "items/../../pyproject.toml",
        "%2e%2e/pyproject.toml",
        "items/./x.png",
        "items\\..\\x.png",
        "missing/nothing.png",
    ],
)
def test_media_refuses_paths_that_leave_storage_or_do_not_exist(client, reviewer, settings, path):
    settings.MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
    (settings.MEDIA_ROOT.parent / "pyproject.toml").write_text("secret")
    client.force_login(reviewer)

    response = client.get("/media/" + path)

    assert response.status_code == 404


def test_media_refuses_an_absolute_path(client, reviewer):
    client.force_login(reviewer)

    assert client.get("/media//etc/passwd").status_code == 404


def test_media_serves_only_the_pipelines_images_not_other_stored_files(client, reviewer, settings):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    name = default_storage.save("uploads/pending/kept.csv", ContentFile(b"sku,name\n1,a\n"))
    client.force_login(reviewer)

    assert default_storage.exists(name)
    assert client.get("/media/" + name).status_code == 404
