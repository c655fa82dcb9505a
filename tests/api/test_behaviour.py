"""What every client relies on: Idempotency-Key (also under concurrency), the rate limit, the
OpenAPI document and the docs page."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from generation.models import Campaign
from studio.models import IdempotencyRecord
from tests.api.conftest import Api, api_for, assert_problem
from tests.api.test_campaigns import ROWS


def _body(template_version, recipe, name="Idem") -> dict:
    return {"name": name, "template": template_version.pk, "recipe": recipe.pk, "rows": ROWS}


def test_a_retried_create_with_the_same_key_returns_the_first_result(
    creative_api, template_version, recipe, handoffs
):
    key = {"Idempotency-Key": "abc-1"}
    first = creative_api.post("/campaigns", _body(template_version, recipe), headers=key)
    second = creative_api.post("/campaigns", _body(template_version, recipe), headers=key)

    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert Campaign.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(
    creative_api, template_version, recipe, handoffs
):
    key = {"Idempotency-Key": "abc-2"}
    creative_api.post("/campaigns", _body(template_version, recipe), headers=key)

    body = assert_problem(
        creative_api.post("/campaigns", _body(template_version, recipe, name="Other"), headers=key),
        422,
    )

    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert Campaign.objects.count() == 1


def test_without_a_key_each_create_makes_a_campaign(
    creative_api, template_version, recipe, handoffs
):
    creative_api.post("/campaigns", _body(template_version, recipe))
    creative_api.post("/campaigns", _body(template_version, recipe))

    assert Campaign.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_identical_creates_make_one_campaign(
    creative, template_version, recipe, handoffs
):
    _token, secret = __import__("studio.tokens", fromlist=["token_create"]).token_create(
        user=creative, name="t", scopes=["campaigns:write", "campaigns:read"]
    )
    body = _body(template_version, recipe)
    barrier = threading.Barrier(20)
    answers: list = []

    def create():
        try:
            barrier.wait()
            api = Api(Client(), secret)
            answers.append(api.post("/campaigns", body, headers={"Idempotency-Key": "same"}))
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [a.status_code for a in answers] == [201] * 20
    assert len({a.json()["id"] for a in answers}) == 1
    assert Campaign.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_over_the_rate_limit_the_api_answers_429_with_retry_after(client, creative, settings):
    settings.STUDIO_API_RATE_LIMIT = 3
    api = api_for(client, creative)

    answers = [api.get("/campaigns") for _ in range(4)]

    assert [a.status_code for a in answers[:3]] == [200] * 3
    assert_problem(answers[3], 429)
    assert 1 <= int(answers[3]["Retry-After"]) <= 60
    other = api_for(client, creative)  # the limit is per token
    assert other.get("/campaigns").status_code == 200


def test_the_openapi_document_is_3_1_and_lists_every_resource(client, db):
    document = client.get("/api/v1/openapi.json").json()

    assert document["openapi"].startswith("3.1")
    paths = set(document["paths"])
    for path in (
        "/api/v1/campaigns",
        "/api/v1/campaigns/csv",
        "/api/v1/items/{item_id}",
        "/api/v1/review/claim",
        "/api/v1/catalogue/search",
        "/api/v1/webhooks",
    ):
        assert path in paths
    schemes = document["components"]["securitySchemes"]
    assert {"TokenAuth", "BrowserSession"} <= set(schemes)


def test_the_docs_page_loads_its_scripts_from_this_server(client, db):
    page = client.get("/api/v1/docs").content.decode()

    assert "swagger-ui-bundle.js" in page
    assert "cdn.jsdelivr" not in page and "unpkg" not in page


def test_a_retried_csv_upload_with_the_same_key_returns_the_first_result(
    creative_api, template_version, recipe, products_csv, handoffs
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload():
        return creative_api.client.post(
            "/api/v1/campaigns/csv",
            {
                "name": "Upload",
                "template": template_version.pk,
                "recipe": recipe.pk,
                "csv_file": SimpleUploadedFile("products.csv", products_csv, "text/csv"),
            },
            headers=creative_api.headers | {"Idempotency-Key": "upload-1"},
        )

    first, second = upload(), upload()

    assert first.status_code == second.status_code == 201, first.content
    assert first.json()["id"] == second.json()["id"]
    assert Campaign.objects.count() == 1


def test_idempotency_answers_are_forgotten_after_a_day(
    creative_api, template_version, recipe, handoffs
):
    from datetime import timedelta

    from django.utils import timezone

    from studio.tokens import idempotency_records_expire

    creative_api.post(
        "/campaigns", _body(template_version, recipe), headers={"Idempotency-Key": "k"}
    )
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))

    assert idempotency_records_expire() == {"idempotency_expired": 1}
    assert not IdempotencyRecord.objects.exists()
