"""Contract tests: the review queue (claim with a lease token, decide) and catalogue search."""

from __future__ import annotations

import uuid

import pytest

from generation.models import Item
from review.models import ReviewTask
from tests.api.conftest import assert_problem


def test_a_reviewer_claims_the_next_image_and_decides_it(reviewer_api, review_items, handoffs):
    claimed = reviewer_api.post("/review/claim").json()["task"]

    assert claimed["item"] in {str(i.pk) for i in review_items}
    assert claimed["lease_token"]
    decided = reviewer_api.post(
        f"/review/tasks/{claimed['id']}/decide",
        {"lease_token": claimed["lease_token"], "decision": "approved"},
    )

    assert decided.status_code == 200, decided.content
    assert decided.json()["decision"] == "approved"
    assert Item.objects.get(pk=claimed["item"]).status == Item.Status.APPROVED


def test_claiming_again_returns_the_same_claim_while_it_holds(reviewer_api, review_items):
    first = reviewer_api.post("/review/claim").json()["task"]
    again = reviewer_api.post("/review/claim").json()["task"]

    assert first["id"] == again["id"] and first["lease_token"] == again["lease_token"]


def test_claims_can_be_limited_to_a_campaign(reviewer_api, review_items, campaign):
    other = uuid.uuid4()
    assert reviewer_api.post("/review/claim", {"campaign": str(other)}).json() == {"task": None}
    assert reviewer_api.post("/review/claim", {"campaign": str(campaign.pk)}).json()["task"]


def test_an_empty_queue_answers_no_task(reviewer_api, db):
    assert reviewer_api.post("/review/claim").json() == {"task": None}


def test_a_decision_with_a_wrong_token_is_a_conflict(reviewer_api, review_items):
    claimed = reviewer_api.post("/review/claim").json()["task"]

    body = assert_problem(
        reviewer_api.post(
            f"/review/tasks/{claimed['id']}/decide",
            {"lease_token": str(uuid.uuid4()), "decision": "approved"},
        ),
        409,
    )
    assert "no longer yours" in body["detail"]
    assert ReviewTask.objects.get(pk=claimed["id"]).status == "pending"


def test_a_rejection_without_a_reason_is_a_field_error(reviewer_api, review_items):
    claimed = reviewer_api.post("/review/claim").json()["task"]

    body = assert_problem(
        reviewer_api.post(
            f"/review/tasks/{claimed['id']}/decide",
            {"lease_token": claimed["lease_token"], "decision": "rejected"},
        ),
        422,
    )
    assert body["errors"] == [{"loc": ["body", "reason"], "msg": "say why the image is rejected"}]


def test_an_unknown_task_is_a_404(reviewer_api, db):
    assert_problem(
        reviewer_api.post(
            f"/review/tasks/{uuid.uuid4()}/decide",
            {"lease_token": str(uuid.uuid4()), "decision": "approved"},
        ),
        404,
    )


def test_a_claim_is_given_back(reviewer_api, review_items):
    claimed = reviewer_api.post("/review/claim").json()["task"]

    released = reviewer_api.post(
        f"/review/tasks/{claimed['id']}/release", {"lease_token": claimed["lease_token"]}
    )

    assert released.json() == {"released": True}
    assert ReviewTask.objects.get(pk=claimed["id"]).claimed_by is None


def test_the_catalogue_is_searched_with_the_pages_filters_and_facets(
    creative_api, campaign, stages_inline
):
    from catalogue.services import entries_reconcile

    with stages_inline():
        entries_reconcile()

    body = creative_api.get(f"/catalogue/search?q=sneaker&campaign={campaign.pk}").json()

    assert body["total"] >= 1
    assert all(e["campaign"] == str(campaign.pk) for e in body["items"])
    assert "status" in body["facets"]
    assert body["facets"]["status"][0]["count"] >= 1


def test_a_bad_search_filter_is_the_pages_message_on_its_parameter(creative_api, db):
    body = assert_problem(creative_api.get("/catalogue/search?campaign=not-a-uuid"), 422)

    assert body["errors"][0]["loc"] == ["query", "campaign"]
    assert "campaign id" in body["errors"][0]["msg"]


@pytest.mark.parametrize("report", ["overview", "campaigns", "recipes", "prompts", "hosting"])
def test_each_managers_report_is_its_pages_tables_as_json(manager_api, campaign, report):
    body = manager_api.get(f"/reports/{report}").json()

    assert body["report"] == report
    assert body["tables"]
    for table in body["tables"]:
        assert all(len(row) == len(table["headers"]) for row in table["rows"])


def test_a_bad_report_filter_is_a_problem_naming_it(manager_api, db):
    body = assert_problem(manager_api.get("/reports/campaigns?month=2026-13"), 422)

    assert body["errors"][0]["loc"] == ["query", "month"]


def test_reports_need_the_reports_scope(creative_api, db):
    assert_problem(creative_api.get("/reports/overview"), 403)


def test_an_items_renditions_are_listed_and_downloaded(creative_api, asset, admin_user):
    from catalogue.jobs import sync_assets
    from catalogue.services import asset_withdraw

    sync_assets([str(asset.item_id)])

    item = creative_api.get(f"/items/{asset.item_id}").json()
    (rendition,) = item["renditions"]
    assert rendition["channel"] == "web-thumbnail" and rendition["upscaled"]
    path = rendition["url"].removeprefix("/api/v1")
    download = creative_api.get(path)
    assert download.status_code == 200
    body = b"".join(download.streaming_content)
    import hashlib

    assert hashlib.sha256(body).hexdigest() == rendition["sha256"]
    assert "attachment" in download["Content-Disposition"]
    assert creative_api.get(f"/items/{asset.item_id}/renditions/tiktok").status_code == 404

    asset_withdraw(asset=asset, user=admin_user)
    assert creative_api.get(path).status_code == 404


def test_a_repeated_search_is_answered_from_redis_until_an_entry_changes(
    creative_api, campaign, stages_inline
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalogue.services import entries_reconcile, entries_tags_edit

    with stages_inline():
        entries_reconcile()
    path = f"/catalogue/search?q=sneaker&campaign={campaign.pk}"
    first = creative_api.get(path).json()

    with CaptureQueriesContext(connection) as queries:
        again = creative_api.get(path).json()
    assert again == first
    assert not [q for q in queries.captured_queries if "catalogue_entry" in q["sql"]]

    entries_tags_edit(item_ids=[first["items"][0]["item"]], add=["springsale"])

    tags = {e["item"]: e["tags"] for e in creative_api.get(path).json()["items"]}
    assert "springsale" in tags[first["items"][0]["item"]]


def test_without_redis_a_search_is_answered_from_the_database(
    creative_api, campaign, stages_inline, monkeypatch
):
    from catalogue.services import entries_reconcile
    from studio import freshness

    with stages_inline():
        entries_reconcile()
    monkeypatch.setattr(freshness, "stamp", lambda name: None)

    body = creative_api.get(f"/catalogue/search?q=sneaker&campaign={campaign.pk}").json()

    assert body["total"] >= 1
