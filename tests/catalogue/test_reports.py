"""Managers' reports: numbers that add up (ledger spend, acceptance counts equal item counts),
ROI, the cheapest combination that meets a bar, prompts that fail, self-hosting or API; the
pages, their CSV and the CLI."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from catalogue.reports import selectors
from catalogue.reports.services import campaign_value_set
from catalogue.services import entries_sync
from generation.models import CostEntry, Item
from generation.services import cost_record, month_of
from studio.launch import campaign_launch
from tests.conftest import blur_rejections, fixture_csv, route_items

CENT = Decimal("0.01")


def _charge(item, amount: str, *, unit: str = "gpu_second", seconds: str = "2") -> None:
    cost_record(
        key=f"test:{item.pk}",
        kind=CostEntry.Kind.COMPUTE,
        quantity=Decimal(seconds),
        unit=unit,
        rate=Decimal(amount) / Decimal(seconds),
        amount=Decimal(amount),
        item_id=item.pk,
    )


@pytest.fixture
def judged(campaign, reviewer):
    """4 auto-approved, 3 rejected automatically (blur, exposure, exposure), 1 rejected by a
    reviewer for blur, 1 failed; every judged image charged 1p of GPU time; all indexed."""
    approved = route_items(campaign, to="approved", count=4)
    rejected, task = blur_rejections(campaign, reviewer)
    failed = campaign.items.filter(status=Item.Status.QUEUED).first()
    Item.objects.filter(pk=failed.pk).update(status=Item.Status.FAILED)
    for item in [*approved, *rejected, task.item]:
        _charge(item, "0.01")
    entries_sync(item_ids=list(campaign.items.values_list("pk", flat=True)))
    return campaign


def _ledger_total(**filters) -> Decimal:
    return sum((e.amount for e in CostEntry.objects.filter(**filters)), Decimal(0))


def test_the_overview_counts_every_image_once_and_reads_spend_from_the_ledger(judged):
    data = selectors.report_overview(month=month_of())
    o = data["outcome"]
    assert (o["auto_approved"], o["review_approved"], o["rejected"], o["failed"]) == (4, 0, 4, 1)
    assert o["images"] == judged.items.count() == 40
    assert o["in_progress"] + o["cancelled"] == 40 - 9
    assert o["acceptance"] == 0.5
    assert data["spend"] == _ledger_total(month=month_of())
    # Eight images at 1p, plus the reviewer's seconds on the one they rejected.
    assert data["spend_by_kind"]["compute"] == Decimal("0.08")
    assert data["spend_by_kind"]["review"] == _ledger_total(kind="review")
    assert o["cost_per_approved"] == data["spend"] / 4
    assert data["review_hours"] >= 0
    assert data["trend"][-1]["month"] == month_of()
    assert data["trend"][-1]["approved"] == 4
    assert len(data["trend"]) == 12


def test_campaign_costs_add_up_to_the_months_spend_and_roi_uses_the_value_set(
    judged, creative, template_version, recipe
):
    other = campaign_launch(
        name="Summer bags",
        template_version=template_version,
        recipe=recipe,
        csv_bytes=fixture_csv("products.csv"),
        csv_filename="products.csv",
        variations=1,
        user=creative,
        base_seed=7,
    )
    _charge(other.items.first(), "0.50")
    campaign_value_set(campaign=judged, value_per_image=Decimal("2.00"))

    rows = {r["name"]: r for r in selectors.report_campaigns(period=selectors.Period(month_of()))}
    assert set(rows) == {"Spring shoes", "Summer bags"}
    assert sum(r["cost"] for r in rows.values()) == _ledger_total(month=month_of())
    spring = rows["Spring shoes"]
    assert spring["approved"] == 4
    assert spring["rejected_by_reason"] == {"exposure": 2, "blur": 2}
    assert spring["value"] == Decimal("8.00")
    assert spring["roi"] == pytest.approx(float((8 - spring["cost"]) / spring["cost"]))
    assert rows["Summer bags"]["roi"] is None  # no value set
    assert rows["Summer bags"]["cost_by_kind"]["compute"] == Decimal("0.50")

    only = selectors.report_campaigns(period=selectors.Period(campaign_id=other.pk))
    assert [r["name"] for r in only] == ["Summer bags"]


def test_the_recommendation_is_the_cheapest_combination_that_meets_the_bar(judged):
    data = selectors.report_combinations(bar=0.5, min_images=8)
    assert [c["label"] for c in data["combinations"]] == ["sd15 v1 · no LoRA"]
    combo = data["combinations"][0]
    assert (combo["judged"], combo["acceptance"]) == (8, 0.5)
    assert data["recommendation"]["label"] == "sd15 v1 · no LoRA"
    assert data["recipes"][0]["label"] == "catalogue v1"

    assert selectors.report_combinations(bar=0.6, min_images=8)["recommendation"] is None
    assert selectors.report_combinations(bar=0.5, min_images=9)["recommendation"] is None


def test_prompts_show_which_field_values_fail_and_why(judged):
    data = selectors.report_prompts(min_images=1)
    assert data["templates"][0]["label"] == "product-photo v1"
    assert data["templates"][0]["judged"] == 8
    fields = {f["label"]: f for f in data["fields"]}
    assert fields["material=mesh"]["acceptance"] == 1.0
    assert fields["material=mesh"]["approved"] == 4
    # A SKU names one product: its values do not repeat across products, so it is left out...
    assert not any(label.startswith("sku=") for label in fields)
    # ...and the worst come first, with their reasons.
    worst = data["fields"][0]
    assert worst["acceptance"] == 0.0
    assert {r["code"] for r in worst["top_reasons"]} <= {"blur", "exposure"}


def test_hosting_compares_an_own_gpu_with_an_api_from_the_ledgers_volume(judged, settings):
    settings.STUDIO_SELFHOST_GPU_PRICE = Decimal("2400")
    settings.STUDIO_SELFHOST_AMORTISATION_MONTHS = 24
    settings.STUDIO_SELFHOST_POWER_WATTS = Decimal("500")
    settings.STUDIO_SELFHOST_POWER_PRICE_KWH = Decimal("0.36")
    settings.STUDIO_API_IMAGE_PRICES = {"sd15": Decimal("0.02")}
    data = selectors.report_hosting()
    assert data["volume"] == 8
    assert data["seconds_measured"] and data["seconds_per_image"] == 2.0
    assert data["fixed_monthly"] == Decimal(100)
    # 2 s at 500 W: 1/3600 kWh... × £0.36 = £0.0001 an image.
    assert data["own_per_image"] == Decimal("0.0001")
    assert data["api_per_image"] == Decimal("0.02")
    assert data["break_even"] == 5026  # 100 / (0.02 - 0.0001), rounded up
    assert data["cheaper"] == "API"


def test_a_month_without_data_says_so(manager_client):
    response = manager_client.get(reverse("reports:overview"), {"month": "2001-01"})
    assert response.status_code == 200
    assert "No images and no spend in January 2001" in response.content.decode()


@pytest.mark.parametrize("name", ["overview", "campaigns", "recipes", "prompts", "hosting"])
def test_each_report_page_shows_its_tables_to_managers(manager_client, judged, name):
    response = manager_client.get(reverse(f"reports:{name}"), {"min_images": 1, "bar": 50})
    assert response.status_code == 200
    text = response.content.decode()
    assert "<table>" in text
    assert "chart.umd.min.js" in text


@pytest.mark.parametrize("name", ["overview", "campaigns", "recipes", "prompts", "hosting"])
def test_report_pages_are_for_managers_and_admins_only(client, creative, reviewer, name):
    for user in (creative, reviewer):
        client.force_login(user)
        assert client.get(reverse(f"reports:{name}")).status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"month": "2026-13"}, "month"),
        ({"month": "last month"}, "month"),
        ({"campaign": "not-a-uuid"}, "campaign"),
        ({"campaign": "5e4f1c0e-0000-0000-0000-000000000000"}, "campaign"),
        ({"bar": "250"}, "bar"),
        ({"min_images": "-3"}, "min_images"),
    ],
)
def test_bad_filters_are_named_on_the_page(manager_client, params, field):
    response = manager_client.get(reverse("reports:recipes"), params)
    assert response.status_code == 200
    text = response.content.decode()
    assert 'role="alert"' in text and f"<strong>{field}</strong>" in text


def test_campaign_csv_neutralises_formulas_and_matches_the_table(manager_client, judged):
    judged.name = "=HYPERLINK(1)"
    judged.save(update_fields=["name"])
    response = manager_client.get(reverse("reports:campaigns"), {"csv": "campaigns"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "Campaign"
    assert rows[1][0] == "'=HYPERLINK(1)"
    assert rows[1][rows[0].index("Approved")] == "4"


def test_a_manager_sets_the_value_of_an_approved_image(manager_client, judged):
    url = reverse("reports:campaign_value", args=[judged.pk])
    response = manager_client.post(url, {"value_per_image": "45.00", "note": "photo shoot"})
    assert response.status_code == 302
    assert judged.value.value_per_image == Decimal("45.00")

    response = manager_client.post(url, {"value_per_image": "1.234"}, follow=True)
    assert "Value of an approved image" in response.content.decode()
    judged.value.refresh_from_db()
    assert judged.value.value_per_image == Decimal("45.00")


def test_the_report_command_prints_json(judged, capsys):
    call_command("report", "overview", "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["report"] == "overview" and out["currency"] == "GBP"
    assert out["data"]["outcome"]["approved"] == 4
    assert Decimal(out["data"]["spend"]) == _ledger_total()

    call_command("report", "campaigns", "--json", "--campaign", str(judged.pk))
    rows = json.loads(capsys.readouterr().out)["data"]
    assert rows[0]["name"] == "Spring shoes" and rows[0]["approved"] == 4

    call_command("report", "prompts")
    assert "CSV field values, worst first" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["weekly"], "report: expected one of"),
        (["overview", "--month", "2026-1"], "--month"),
        (["campaigns", "--campaign", "x"], "--campaign"),
        (["recipes", "--bar", "0"], "--bar"),
    ],
)
def test_the_report_command_refuses_bad_options(db, args, message):
    with pytest.raises(CommandError, match=message) as error:
        call_command("report", *args)
    assert error.value.returncode == 2


def test_the_recipes_page_states_the_recommendation_and_its_numbers(manager_client, judged):
    text = manager_client.get(reverse("reports:recipes"), {"bar": 50, "min_images": 8}).content
    text = text.decode()
    assert "Recommended: sd15 v1 · no LoRA" in text
    assert "50.0% acceptance over 8 judged images" in text
    text = manager_client.get(reverse("reports:recipes"), {"bar": 90}).content.decode()
    assert "No combination reaches 90.0% acceptance" in text


def test_a_manager_rolls_a_prompt_template_back_from_the_versions_page(
    manager, manager_client, template_version
):
    from generation.models import PromptTemplateVersion
    from generation.services import prompt_template_version_create

    newer = prompt_template_version_create(
        name="product-photo", body=template_version.body + ", studio light", negative_prompt=""
    )
    assert newer.version == 2 and newer.is_active
    page = manager_client.get(reverse("reports:versions")).content.decode()
    assert "Roll back to v1" in page

    url = reverse("reports:version_activate", args=["template", template_version.pk])
    response = manager_client.post(url, follow=True)
    text = response.content.decode()
    assert "Rolled back product-photo to v1 (was v2)" in text
    active = PromptTemplateVersion.objects.get(template=template_version.template, is_active=True)
    assert active.pk == template_version.pk
    assert f"{manager.get_username()} · Activated v1 (was v2)" in text


def test_rolling_back_needs_a_manager_and_a_real_version(creative, manager_client):
    from django.test import Client

    client = Client()
    client.force_login(creative)
    assert client.post(reverse("reports:version_activate", args=["recipe", 1])).status_code == 403
    assert client.get(reverse("reports:versions")).status_code == 403
    for kind, pk in (("recipe", 999999), ("spaceship", 1)):
        url = reverse("reports:version_activate", args=[kind, pk])
        assert manager_client.post(url).status_code == 404
    assert (
        manager_client.get(reverse("reports:version_activate", args=["recipe", 1])).status_code
        == 405
    )


def test_roi_by_month_counts_only_campaigns_with_a_value(judged):
    assert selectors.report_overview()["roi_by_month"][-1]["roi"] is None
    campaign_value_set(campaign=judged, value_per_image=Decimal("1.00"))
    last = selectors.report_overview()["roi_by_month"][-1]
    cost = _ledger_total(campaign=judged)
    assert last["value"] == Decimal("4.00") and last["cost"] == cost
    assert last["roi"] == pytest.approx(float((4 - cost) / cost))
