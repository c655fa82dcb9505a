"""Contract tests: templates, recipes, campaigns and items."""

from __future__ import annotations

from decimal import Decimal

import pytest

from generation.models import Campaign, Item
from tests.api.conftest import assert_problem
from tests.conftest import item_as_generated

ROWS = [
    {"sku": "SH-1", "product_type": "sneaker", "name": "Aero", "color": "red", "material": "mesh"},
    {"sku": "SH-2", "product_type": "boot", "name": "Trail", "color": "brown", "material": "suede"},
]


def _body(template_version, recipe, **extra) -> dict:
    return {
        "name": "API launch",
        "template": template_version.pk,
        "recipe": recipe.pk,
        "rows": ROWS,
        "variations": 2,
        "base_seed": 7,
    } | extra


def test_templates_are_listed_with_their_versions(creative_api, template_version):
    body = creative_api.get("/templates").json()

    (template,) = body["items"]
    assert template["name"] == "product-photo"
    assert template["versions"][0]["placeholders"] == template_version.placeholders
    assert body["next_cursor"] is None
    one = creative_api.get(f"/templates/{template['id']}")
    assert one.json()["id"] == template["id"]


def test_recipes_are_listed_and_filtered_by_name(creative_api, recipe):
    assert [r["id"] for r in creative_api.get("/recipes").json()["items"]] == [recipe.pk]
    assert creative_api.get("/recipes?name=other").json()["items"] == []


def test_a_campaign_is_created_from_json_rows(
    creative_api, creative, template_version, recipe, handoffs
):
    response = creative_api.post("/campaigns", _body(template_version, recipe))

    assert response.status_code == 201, response.content
    body = response.json()
    campaign = Campaign.objects.get(pk=body["id"])
    assert campaign.created_by == creative
    assert campaign.items.count() == 4
    assert body["progress"]["total"] == 4
    assert body["progress"]["counts"]["queued"] == 4
    assert hasattr(campaign, "quality_policy")


def test_a_campaign_is_created_from_an_uploaded_csv(
    creative_api, template_version, recipe, products_csv, handoffs
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = creative_api.client.post(
        "/api/v1/campaigns/csv",
        {
            "name": "Upload",
            "template": template_version.pk,
            "recipe": recipe.pk,
            "variations": 1,
            "seed_policy": "fixed",
            "csv_file": SimpleUploadedFile("products.csv", products_csv, "text/csv"),
        },
        headers=creative_api.headers,
    )

    assert response.status_code == 201, response.content
    assert Campaign.objects.get(pk=response.json()["id"]).csv_filename == "products.csv"


def test_a_bad_row_gets_the_pages_message_naming_its_row_and_column(
    creative_api, template_version, recipe
):
    rows = [ROWS[0], {**ROWS[1], "color": ""}]

    body = assert_problem(
        creative_api.post("/campaigns", _body(template_version, recipe, rows=rows)), 422
    )

    (error,) = body["errors"]
    assert error["loc"] == ["body", "rows"]
    assert "row" in error["msg"] and "color" in error["msg"]
    assert not Campaign.objects.exists()


def test_an_inactive_or_unknown_template_is_a_field_error(creative_api, template_version, recipe):
    body = assert_problem(
        creative_api.post("/campaigns", _body(template_version, recipe, template=999999)), 422
    )

    assert ["body", "template"] in [e["loc"] for e in body["errors"]]


def test_unknown_fields_are_refused(creative_api, template_version, recipe):
    body = assert_problem(
        creative_api.post("/campaigns", _body(template_version, recipe, colour="red")), 422
    )

    assert any("colour" in e["loc"] for e in body["errors"])
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"name": 5},
        {"name": "x", "template": "one", "recipe": 1, "rows": [{}]},
        {"name": "x", "template": 1, "recipe": 1, "rows": []},
        {"name": "x", "template": 1, "recipe": 1, "rows": [{"a": {"nested": 1}}]},
        {"name": "x", "template": 1, "recipe": 1, "rows": [{"a": "b"}], "variations": 10**30},
    ],
)
def test_malformed_bodies_are_problems_never_server_errors(creative_api, db, payload):
    assert_problem(creative_api.post("/campaigns", payload), 422)


def test_a_body_that_is_not_json_is_a_problem(creative_api, db):
    response = creative_api.client.post(
        "/api/v1/campaigns",
        data=b"{not json",
        content_type="application/json",
        headers=creative_api.headers,
    )
    assert 400 <= response.status_code < 500


def test_an_oversized_body_is_refused_before_it_is_read(creative_api, settings, db):
    settings.STUDIO_API_MAX_BODY_BYTES = 2048

    response = creative_api.post("/campaigns", {"name": "x" * 5000})

    assert_problem(response, 413)


def test_campaigns_are_listed_newest_first_with_a_cursor(
    creative_api, creative, template_version, recipe, handoffs
):
    ids = [
        creative_api.post(
            "/campaigns", _body(template_version, recipe, name=f"c{i}", rows=ROWS[:1])
        ).json()["id"]
        for i in range(3)
    ]

    first = creative_api.get("/campaigns?limit=2").json()
    second = creative_api.get(f"/campaigns?limit=2&cursor={first['next_cursor']}").json()

    assert [c["id"] for c in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None


def test_campaigns_are_filtered_by_status_and_name(creative_api, campaign):
    assert [
        c["id"] for c in creative_api.get("/campaigns?status=running&q=spring").json()["items"]
    ] == [str(campaign.pk)]
    assert creative_api.get("/campaigns?status=paused").json()["items"] == []
    assert_problem(creative_api.get("/campaigns?status=sleeping"), 422)


def test_a_cursor_that_was_not_given_out_is_a_problem(creative_api, campaign):
    for cursor in ("garbage!!", "bm90LWEtdXVpZA", "MTIz"):
        body = assert_problem(creative_api.get(f"/campaigns?cursor={cursor}"), 422)
        assert body["errors"][0]["loc"] == ["body", "cursor"]


def test_a_campaign_shows_its_progress_and_cost(creative_api, campaign):
    body = creative_api.get(f"/campaigns/{campaign.pk}").json()

    assert body["progress"]["total"] == campaign.items.count()
    assert body["cost"] == "0"
    assert body["currency"]


def test_a_campaign_status_counts_each_item_status_and_sums_its_ledger(creative_api, campaign):
    from generation.selectors import campaign_cost, campaign_progress
    from generation.services import cost_record

    first, second = campaign.items.order_by("row_index")[:2]
    Item.objects.filter(pk=first.pk).update(status=Item.Status.FAILED)
    cost_record(key="a", kind="api", quantity=3, unit="credit", rate="0.01", item_id=first.pk)
    cost_record(key="b", kind="api", quantity=1, unit="credit", rate="0.5", item_id=second.pk)

    body = creative_api.get(f"/campaigns/{campaign.pk}").json()

    progress = campaign_progress(campaign=campaign)
    assert body["progress"]["counts"] == {s: progress.counts.get(s, 0) for s in Item.Status.values}
    assert body["progress"]["counts"]["failed"] == 1
    assert body["progress"]["percent"] == progress.percent
    assert Decimal(body["cost"]) == campaign_cost(campaign=campaign) == Decimal("0.53")


def test_a_campaign_without_items_spending_or_a_creator_still_has_a_status(creative_api, campaign):
    campaign.items.all().delete()
    Campaign.objects.filter(pk=campaign.pk).update(created_by=None)

    body = creative_api.get(f"/campaigns/{campaign.pk}").json()

    assert body["progress"]["total"] == 0
    assert set(body["progress"]["counts"].values()) == {0}
    assert body["cost"] == "0"
    assert body["created_by"] is None
    assert body["template"] == str(campaign.template_version)


def test_an_unknown_campaign_is_a_404_problem(creative_api, db):
    assert_problem(creative_api.get("/campaigns/00000000-0000-0000-0000-000000000000"), 404)
    assert creative_api.get("/campaigns/not-a-uuid").status_code == 404


def test_a_campaign_is_paused_resumed_and_cancelled(creative_api, campaign, handoffs):
    paused = creative_api.post(f"/campaigns/{campaign.pk}/pause")
    assert paused.status_code == 200 and paused.json()["campaign"]["status"] == "paused"
    assert paused.json()["campaign"]["pause_reason"] == "manual"

    again = assert_problem(creative_api.post(f"/campaigns/{campaign.pk}/pause"), 422)
    assert "cannot pause a campaign that is paused" in again["detail"]

    assert (
        creative_api.post(f"/campaigns/{campaign.pk}/resume").json()["campaign"]["status"]
        == "running"
    )
    cancelled = creative_api.post(f"/campaigns/{campaign.pk}/cancel").json()
    assert cancelled["campaign"]["status"] == "cancelled"
    assert "cancelled" in cancelled["message"]


def test_retry_without_failed_items_says_so(creative_api, campaign):
    body = assert_problem(creative_api.post(f"/campaigns/{campaign.pk}/retry"), 422)
    assert body["errors"] == [{"loc": ["body", "campaign"], "msg": "has no failed items to retry"}]


def test_retry_queues_failed_items_again(creative_api, campaign, handoffs):
    Item.objects.filter(pk=campaign.items.first().pk).update(status=Item.Status.FAILED)

    body = creative_api.post(f"/campaigns/{campaign.pk}/retry").json()

    assert "1 failed item(s)" in body["message"]


def test_priority_is_set_and_a_bad_one_is_a_field_error(creative_api, campaign):
    assert (
        creative_api.post(f"/campaigns/{campaign.pk}/priority", {"priority": "high"}).json()[
            "campaign"
        ]["priority"]
        == "high"
    )
    body = assert_problem(
        creative_api.post(f"/campaigns/{campaign.pk}/priority", {"priority": "urgent"}), 422
    )
    assert body["errors"][0]["loc"] == ["body", "priority"]


def test_items_are_listed_in_row_order_with_a_status_filter_and_a_cursor(creative_api, campaign):
    all_ids = [
        str(i.pk) for i in campaign.items.order_by("row_index", "variation", "created_at", "pk")
    ]

    seen, cursor = [], ""
    while True:
        page = creative_api.get(
            f"/campaigns/{campaign.pk}/items?limit=3" + (f"&cursor={cursor}" if cursor else "")
        ).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert seen == all_ids
    assert creative_api.get(f"/campaigns/{campaign.pk}/items?status=approved").json()["items"] == []


def test_an_item_shows_its_provenance_and_its_image_downloads(creative_api, campaign):
    item = item_as_generated(campaign.items.first())

    body = creative_api.get(f"/items/{item.pk}").json()
    image = creative_api.get(body["image_url"].removeprefix("/api/v1"))

    assert body["provenance"]["seed"] == item.seed
    assert body["provenance"]["base_model"]["name"] == "sd15"
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content).startswith(b"\x89PNG")


def test_an_item_without_an_image_has_no_download(creative_api, campaign):
    item = campaign.items.first()
    assert creative_api.get(f"/items/{item.pk}").json()["image_url"] is None
    assert_problem(creative_api.get(f"/items/{item.pk}/image"), 404)


def test_an_estimate_prices_a_campaign_without_creating_it(creative_api, template_version, recipe):
    body = creative_api.post("/campaigns/estimate", _body(template_version, recipe)).json()

    assert body["images"] == 4
    assert float(body["total"]) >= 0
    assert body["lines"][0]["recipe"] == recipe.pk
    assert not Campaign.objects.exists()


def test_an_estimate_of_bad_rows_names_the_rows(creative_api, template_version, recipe):
    rows = [{**ROWS[0], "color": ""}]

    body = assert_problem(
        creative_api.post("/campaigns/estimate", _body(template_version, recipe, rows=rows)), 422
    )

    assert body["errors"][0]["loc"] == ["body", "rows"]


def test_the_cost_report_groups_the_ledger(manager_api, campaign):
    from generation.services import cost_record

    item = campaign.items.first()
    cost_record(
        key=f"test:{item.pk}",
        kind="compute",
        quantity=10,
        unit="second",
        rate="0.05",
        item_id=item.pk,
        campaign_id=campaign.pk,
    )

    body = manager_api.get(f"/reports/costs?by=kind&by=month&campaign={campaign.pk}").json()

    assert body["by"] == ["kind", "month"]
    (row,) = body["rows"]
    assert row["kind"] == "compute" and float(row["amount"]) == 0.5
    assert body["currency"]
    assert_problem(manager_api.get("/reports/costs?by=colour"), 422)
    assert_problem(manager_api.get("/reports/costs?month=13-2026"), 422)
