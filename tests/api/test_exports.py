"""Contract tests: exports over the API (create -> 202, status and progress, the zip)."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest

from catalogue.jobs import build_export
from catalogue.models import Export
from catalogue.services import entries_sync
from tests.api.conftest import api_for, assert_problem
from tests.catalogue.exports_support import published
from tests.conftest import make_user


@pytest.fixture
def three(campaign):
    assets = published(campaign, 3)
    entries_sync(item_ids=[a.item_id for a in assets])
    return assets


def test_a_campaign_export_is_accepted_built_and_downloaded(
    creative_api, campaign, three, handoffs
):
    created = creative_api.post("/exports", {"campaign": str(campaign.pk)})
    assert created.status_code == 202, created.content
    body = created.json()
    assert body["status"] == "queued" and body["total"] == 3 and body["download_url"] is None
    assert handoffs == [] or handoffs[0][0] == "catalogue.jobs.build_export"

    assert_problem(creative_api.get(f"/exports/{body['id']}/download"), 409)
    build_export([body["id"]])
    got = creative_api.get(f"/exports/{body['id']}").json()
    assert got["status"] == "ready" and got["percent"] == 100 and got["done"] == 3
    assert got["download_url"] == f"/api/v1/exports/{body['id']}/download"
    zipped = creative_api.get(f"/exports/{body['id']}/download")
    assert zipped.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(b"".join(zipped.streaming_content))).namelist()
    assert "manifest.json" in names


def test_a_search_export_takes_the_search_parameters(creative_api, three, handoffs):
    created = creative_api.post(
        "/exports", {"search": {"q": "sneaker", "status": ["approved"]}, "layout": "game-engine"}
    )
    assert created.status_code == 202, created.content
    export = Export.objects.get(pk=created.json()["id"])
    assert export.search == {"q": "sneaker", "status": ["approved"]}
    assert export.layout == "game-engine"


@pytest.mark.parametrize(
    "body, where",
    [
        ({"search": {"min_score": "lots"}}, ["body", "search.min_score"]),
        ({"search": {"colour": "red"}}, ["body", "search.colour"]),
        ({"search": {"q": "helicopter"}}, ["body", "selection"]),
        ({}, ["body", "selection"]),
        ({"campaign": str(uuid.UUID(int=1))}, ["body", "campaign"]),
        ({"search": {}, "layout": "unity"}, ["body", "layout"]),
    ],
)
def test_bad_input_is_a_422_naming_the_field(creative_api, three, body, where):
    problem = assert_problem(creative_api.post("/exports", body), 422)
    assert where in [error["loc"] for error in problem["errors"]]
    assert Export.objects.count() == 0


def test_reviewers_may_not_export(reviewer_api, campaign, three):
    assert_problem(reviewer_api.post("/exports", {"campaign": str(campaign.pk)}), 403)


def test_a_token_without_catalogue_read_is_refused(client, creative, campaign, three):
    api = api_for(client, creative, scopes=["campaigns:read"])
    assert_problem(api.post("/exports", {"campaign": str(campaign.pk)}), 403)


def test_another_creatives_export_is_not_found_but_a_manager_sees_it(
    client, creative_api, manager, campaign, three, handoffs
):
    export_id = creative_api.post("/exports", {"campaign": str(campaign.pk)}).json()["id"]
    other = api_for(client, make_user("cleo", "creative"))
    assert_problem(other.get(f"/exports/{export_id}"), 404)
    assert_problem(other.get(f"/exports/{export_id}/download"), 404)
    assert api_for(client, manager).get(f"/exports/{export_id}").status_code == 200


def test_an_expired_export_is_gone(creative_api, campaign, three, handoffs):
    export_id = creative_api.post("/exports", {"campaign": str(campaign.pk)}).json()["id"]
    Export.objects.filter(pk=export_id).update(status="expired")
    assert_problem(creative_api.get(f"/exports/{export_id}/download"), 410)


def test_an_idempotency_key_replays_the_first_answer(creative_api, campaign, three, handoffs):
    headers = {"Idempotency-Key": "export-1"}
    first = creative_api.post("/exports", {"campaign": str(campaign.pk)}, headers=headers)
    again = creative_api.post("/exports", {"campaign": str(campaign.pk)}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert Export.objects.count() == 1
