"""The campaign page and the dashboard as people read them: long names, a cancel that asks
first, cards that say what and why, a status filter, and progress that tells waiting for
review and cancelled images apart."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from generation.models import Campaign, Item
from generation.selectors import Progress, item_product
from review.models import QualityResult, ReviewTask
from tests.conftest import route_items

HTMX = {"HTTP_HX_REQUEST": "true"}
LONG_NAME = "X" * 200


def campaign_page(client, campaign, query: str = "") -> str:
    response = client.get(reverse("generation:campaign", args=[campaign.pk]) + query)
    assert response.status_code == 200
    return response.content.decode()


def cancel_url(campaign) -> str:
    return reverse("generation:campaign_action", args=[campaign.pk, "cancel"])


# --- 1. Long campaign names -------------------------------------------------------------------


def test_a_long_name_is_truncated_on_the_dashboard_with_the_full_name_on_hover(
    creative_client, campaign
):
    Campaign.objects.filter(pk=campaign.pk).update(name=LONG_NAME)

    page = creative_client.get(reverse("generation:dashboard")).content.decode()

    url = reverse("generation:campaign", args=[campaign.pk])
    assert f'class="campaign-name truncate" href="{url}" title="{LONG_NAME}"' in page


def test_a_long_name_wraps_in_the_campaign_heading_and_is_cut_in_the_window_title(
    creative_client, campaign
):
    Campaign.objects.filter(pk=campaign.pk).update(name=LONG_NAME)

    page = campaign_page(creative_client, campaign)

    assert f'<h1 class="campaign-name" title="{LONG_NAME}">{LONG_NAME}</h1>' in page
    assert f"<title>{LONG_NAME}" not in page


# --- 2. Cancel asks first ---------------------------------------------------------------------


def test_cancel_is_a_danger_action_that_says_how_many_queued_images_it_cancels(
    creative_client, campaign
):
    page = campaign_page(creative_client, campaign)

    one_click, behind_the_question = page.split('<details class="danger-zone">')
    assert cancel_url(campaign) not in one_click
    assert reverse("generation:campaign_action", args=[campaign.pk, "pause"]) in one_click
    assert "Cancel 40 queued images? This cannot be undone." in behind_the_question
    assert 'name="confirm" value="yes"' in behind_the_question
    assert '<button type="submit" class="contrast">Yes, cancel 40 images</button>' in page


def test_a_cancel_without_confirm_asks_and_cancels_nothing(creative_client, campaign):
    Item.objects.filter(pk__in=campaign.items.values("pk")[:3]).update(status=Item.Status.RUNNING)

    response = creative_client.post(cancel_url(campaign))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Cancel 37 queued images? This cannot be undone." in page
    assert "3 images are being generated now" in page
    assert 'name="confirm" value="yes"' in page
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.items.filter(status=Item.Status.CANCELLED).count() == 0


def test_a_confirmed_cancel_cancels_the_queued_images(creative_client, campaign):
    response = creative_client.post(cancel_url(campaign), {"confirm": "yes"})

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.items.filter(status=Item.Status.CANCELLED).count() == 40


def test_other_controls_act_without_a_confirmation(creative_client, campaign):
    response = creative_client.post(
        reverse("generation:campaign_action", args=[campaign.pk, "pause"])
    )

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_a_cancel_of_a_finished_campaign_says_why_instead_of_asking(creative_client, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED)

    response = creative_client.post(cancel_url(campaign), follow=True)

    assert "cannot cancel" in response.content.decode()
    assert "This cannot be undone" not in response.content.decode()


# --- 3. Cards and the status filter -----------------------------------------------------------


def test_a_card_shows_the_final_status_and_the_automatic_verdict_apart(client, manager, campaign):
    (item,) = route_items(campaign, to="review", count=1)
    Item.objects.filter(pk=item.pk).update(status=Item.Status.APPROVED)
    client.force_login(manager)

    page = campaign_page(client, campaign, "?status=approved")

    assert '<span class="badge s-approved">Approved</span>' in page
    assert "auto: Needs review</small>" in page


def test_a_card_names_the_product_of_its_row(client, manager, campaign):
    client.force_login(manager)

    page = campaign_page(client, campaign)

    assert (
        '<span class="product" title="SH-1001 · Aero Runner">SH-1001 · Aero Runner</span>' in page
    )
    assert "row 1 · #1" not in page


def test_a_rejected_card_shows_the_automatic_reason(client, manager, campaign):
    (item,) = route_items(campaign, to="rejected", count=1)
    QualityResult.objects.filter(item=item).update(
        reasons=[
            {"code": "blur", "text": "Blurry: the subject is not sharp", "detail": "sharpness 12"},
            {"code": "noise", "text": "Noisy", "detail": ""},
        ]
    )
    client.force_login(manager)

    page = campaign_page(client, campaign, "?status=rejected")

    assert "Blurry: the subject is not sharp" in page
    assert "+1 more" in page
    assert "sharpness 12" in page  # in the hover text


def test_a_rejected_card_shows_an_old_plain_text_reason(client, manager, campaign):
    (item,) = route_items(campaign, to="rejected", count=1)
    QualityResult.objects.filter(item=item).update(reasons=["too dark"])
    client.force_login(manager)

    page = campaign_page(client, campaign, "?status=rejected")

    assert "<small>too dark" in page


def test_a_card_rejected_by_a_reviewer_shows_the_reviewers_reason(client, manager, campaign):
    (item,) = route_items(campaign, to="review", count=1)
    QualityResult.objects.filter(item=item).update(reasons=[{"code": "noise", "text": "Noisy"}])
    ReviewTask.objects.filter(item=item).update(
        status=ReviewTask.Status.DECIDED, decision="rejected", reason="logo is cut off"
    )
    Item.objects.filter(pk=item.pk).update(status=Item.Status.REJECTED)
    client.force_login(manager)

    page = campaign_page(client, campaign, "?status=rejected")

    assert "Reviewer: " in page
    assert "logo is cut off" in page
    assert "Noisy" not in page


def test_the_status_filter_shows_only_that_status_and_offers_the_others(client, manager, campaign):
    route_items(campaign, to="approved", count=2)
    client.force_login(manager)

    page = campaign_page(client, campaign, "?status=approved")

    assert page.count('class="card"') == 2
    assert '?status=approved" aria-current="true">Approved 2</a>' in page
    assert '<a href="?status=queued">Queued 38</a>' in page
    assert ">All 40</a>" in page


def test_pagination_keeps_the_status_filter(client, manager, campaign, monkeypatch):
    monkeypatch.setattr("generation.views.ITEMS_PER_PAGE", 15)
    client.force_login(manager)

    page = campaign_page(client, campaign, "?status=queued&page=2")

    assert page.count('class="card"') == 15
    assert 'href="?status=queued&amp;page=1"' in page
    assert 'href="?status=queued&amp;page=3"' in page
    assert 'href="?status=approved"' not in page  # no approved images: no link to them


def test_an_unknown_status_is_refused_and_all_images_are_shown(client, manager, campaign):
    client.force_login(manager)

    response = client.get(reverse("generation:campaign", args=[campaign.pk]) + "?status=lost")

    assert response.status_code == 400
    assert "status: must be one of" in response.content.decode()
    assert response.content.decode().count('class="card"') == 40


def test_the_pagination_links_keep_the_other_query_parameters_and_change_only_the_page():
    class Page:
        number, has_other_pages, has_previous, has_next = 2, True, True, True
        previous_page_number, next_page_number = 1, 3

        class paginator:
            num_pages = 3

    request = RequestFactory().get("/catalogue/?q=red+shoes&page=2")
    html = render_to_string("includes/pagination.html", {"page": Page()}, request=request)

    assert 'href="?q=red+shoes&amp;page=1"' in html
    assert 'href="?q=red+shoes&amp;page=3"' in html


# --- 4. Waiting for review; cancelled images counted apart -----------------------------------


def test_a_campaign_that_only_waits_for_review_says_so(client, manager, campaign):
    route_items(campaign, to="review", count=12)
    campaign.items.filter(status=Item.Status.QUEUED).update(status=Item.Status.APPROVED)
    client.force_login(manager)

    page = campaign_page(client, campaign)
    dashboard = client.get(reverse("generation:dashboard")).content.decode()

    assert "Waiting for review: 12 images" in page
    assert '<span class="badge s-review">Waiting for review</span>' in dashboard
    assert "12 images to review" in dashboard
    assert ">Running</span>" not in page + dashboard


def test_a_campaign_still_generating_is_running_not_waiting(client, manager, campaign):
    route_items(campaign, to="review", count=2)
    client.force_login(manager)

    page = campaign_page(client, campaign)

    assert '<span class="badge s-running">Running</span>' in page
    assert "Waiting for review" not in page


def test_cancelled_images_are_counted_apart_from_finished_ones(client, manager, campaign):
    items = list(campaign.items.all())
    Item.objects.filter(pk__in=[i.pk for i in items[:4]]).update(status=Item.Status.REVIEW)
    Item.objects.filter(pk__in=[i.pk for i in items[4:]]).update(status=Item.Status.CANCELLED)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)
    client.force_login(manager)

    page = campaign_page(client, campaign)
    dashboard = client.get(reverse("generation:dashboard")).content.decode()

    assert "<strong>0/4</strong><small>finished (0%) · 36 cancelled</small>" in page
    assert "40/40" not in page
    assert '0/4<br><small class="muted">36 cancelled</small>' in dashboard
    assert "40/40" not in dashboard


def test_big_counts_are_grouped_by_thousands():
    progress = Progress({"approved": 4, "cancelled": 1996}, campaign_status="cancelled")
    html = render_to_string(
        "generation/dashboard.html#campaigns",
        {"rows": [(_FakeCampaign(), progress)], "page": None, "studio_roles": []},
    )

    assert '4/4<br><small class="muted">1,996 cancelled</small>' in html


class _FakeCampaign:
    pk = "00000000-0000-0000-0000-000000000001"
    name = "Big sale"
    template_version = recipe = created_by = ""
    created_at = None
    status = "cancelled"


def test_progress_counts_planned_finished_and_cancelled_items():
    progress = Progress({"approved": 3, "failed": 1, "review": 4, "cancelled": 1992})

    assert (progress.total, progress.planned, progress.finished) == (2000, 8, 4)
    assert progress.cancelled == 1992
    assert progress.percent == 50
    assert progress.waiting_for_review == 4


def test_the_percentage_reaches_100_only_when_everything_is_finished():
    progress = Progress({"approved": 1999, "review": 1})

    assert progress.percent == 99


# --- The product of a row ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "product"),
    [
        ({"sku": "SH-1001", "name": "Aero Runner", "color": "red"}, "SH-1001 · Aero Runner"),
        ({"asset_id": "W-001", "subject": "curved sword"}, "W-001 · curved sword"),
        ({"post_id": "S-01", "platform": "tiktok", "product": "Pulse Buds"}, "S-01 · Pulse Buds"),
        ({"Title": "Poster"}, "Poster"),
        ({"colour": "", "mood": "calm", "x": "y"}, "calm"),
        ({}, ""),
    ],
)
def test_the_product_of_a_row_is_its_id_and_name_else_its_first_value(row, product):
    assert item_product(row) == product
