from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from generation.models import Campaign
from tests.conftest import FIXTURES


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_campaign_create_prints_the_id_and_item_count_as_json(template_version, recipe):
    out = run(
        "campaign_create",
        "--name",
        "Shoes",
        "--template",
        "product-photo",
        "--csv",
        str(FIXTURES / "products.csv"),
        "--recipe",
        "catalogue",
        "--variations",
        "2",
        "--json",
    )
    payload = json.loads(out)
    assert payload["items"] == 40
    assert Campaign.objects.get(pk=payload["id"]).name == "Shoes"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"--template": "nope"}, "template: no template named 'nope'"),
        ({"--recipe": "nope"}, "recipe: no recipe named 'nope'"),
        ({"--csv": "/nonexistent.csv"}, "csv: cannot read /nonexistent.csv"),
        ({"--csv": str(FIXTURES / "game_assets.csv")}, "column 'product_type' is missing"),
        ({"--variations": "0"}, "variations: must be between 1"),
        ({"--budget-cap": "12.345"}, "budget_cap"),
        ({"--budget-cap": "0.000001"}, "budget_cap"),
    ],
)
def test_campaign_create_exits_2_with_the_message_and_creates_nothing(
    template_version, recipe, overrides, message
):
    options = {
        "--name": "Shoes",
        "--template": "product-photo",
        "--csv": str(FIXTURES / "products.csv"),
        "--recipe": "catalogue",
    } | overrides
    args = [part for pair in options.items() for part in pair]
    with pytest.raises(CommandError) as error:
        run("campaign_create", *args)
    assert error.value.returncode == 2
    assert message in str(error.value)
    assert Campaign.objects.count() == 0


def test_campaign_create_over_its_cap_needs_over_budget(template_version, recipe, settings):
    settings.STUDIO_ESTIMATE_SECONDS_PER_STEP = 3000  # each 64 px image: minutes of GPU time
    args = [
        "campaign_create",
        "--name",
        "Shoes",
        "--template",
        "product-photo",
        "--csv",
        str(FIXTURES / "products.csv"),
        "--recipe",
        "catalogue",
        "--budget-cap",
        "0.01",
    ]
    with pytest.raises(CommandError, match="budget") as error:
        run(*args)
    assert error.value.returncode == 2 and Campaign.objects.count() == 0

    payload = json.loads(run(*args, "--over-budget", "--json"))
    assert str(Campaign.objects.get(pk=payload["id"]).budget_cap) == "0.01"


def test_campaign_status_prints_counts_by_status(campaign):
    payload = json.loads(run("campaign_status", str(campaign.pk), "--json"))
    assert payload["total"] == 40
    assert payload["counts"]["queued"] == 40
    assert payload["done"] == 0
    text = run("campaign_status", str(campaign.pk))
    assert "0/40 done" in text


def test_campaign_status_of_an_unknown_id_exits_2(db):
    with pytest.raises(CommandError) as error:
        run("campaign_status", "not-a-uuid")
    assert error.value.returncode == 2


def test_catalogue_search_prints_matching_assets_as_json(asset):
    found = json.loads(run("catalogue_search", "sneaker", "--json"))
    assert [r["asset_id"] for r in found["results"] if r["asset_id"]] == [str(asset.pk)]
    assert json.loads(run("catalogue_search", "helicopter", "--json"))["count"] == 0
