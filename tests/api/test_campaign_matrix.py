"""The API's campaign create takes a variation matrix (the page's validation, the field named),
and its OpenAPI document shows the Idempotency-Key header on the POSTs that honour it."""

from __future__ import annotations

import json

import pytest

from generation.models import Campaign
from generation.services import lora_register, prompt_template_version_create
from tests.api.conftest import assert_problem

ROWS = [
    {"sku": "SH-1", "product_type": "sneaker", "name": "Aero", "color": "red", "material": "mesh"},
    {"sku": "SH-2", "product_type": "boot", "name": "Trail", "color": "brown", "material": "suede"},
]


def _body(template_version, recipe, **extra) -> dict:
    return {
        "name": "API matrix",
        "template": template_version.pk,
        "recipe": recipe.pk,
        "rows": ROWS,
        "base_seed": 7,
    } | extra


@pytest.fixture
def style_a(db, tmp_path):
    path = tmp_path / "style-a.safetensors"
    path.write_bytes(b"style-a")
    return lora_register(name="style-a", file=str(path))


@pytest.fixture
def v2(template_version):
    return prompt_template_version_create(
        name="product-photo", body="catalogue shot of {name}, {color} {product_type}"
    )


def test_a_campaign_is_created_with_seeds_a_lora_axis_and_two_template_versions(
    creative_api, template_version, v2, recipe, style_a, handoffs
):
    matrix = {
        "seeds": 3,
        "loras": {"style-a": [0.4, 0.8]},
        "templates": ["product-photo v1", "product-photo v2"],
    }
    # ``template`` is an active version (v2); the axis replaces it with v1 and v2.
    response = creative_api.post("/campaigns", _body(v2, recipe, matrix=matrix))
    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(pk=response.json()["id"])
    assert campaign.items.count() == 2 * 3 * 2 * 2
    assert campaign.template_version == template_version
    assert campaign.matrix["templates"] == ["product-photo v1", "product-photo v2"]
    assert campaign.items.filter(template_version=v2).count() == 12


def test_the_estimate_takes_the_matrix_too(
    creative_api, template_version, recipe, style_a, handoffs
):
    body = _body(template_version, recipe, matrix={"seeds": 4, "guidance": [5, 7.5]})
    response = creative_api.post("/campaigns/estimate", body)
    assert response.status_code == 200, response.content
    assert response.json()["images"] == 2 * 4 * 2
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("matrix", "loc", "text"),
    [
        ({"loras": {"nope": [0.5]}}, ["body", "matrix", "loras"], "unknown LoRA 'nope'"),
        ({"guidance": [99]}, ["body", "matrix", "guidance"], "outside"),
        ({"steps": [10, 20], "guidance": [5], "mode": "zip"}, ["body", "matrix"], "zip pairs"),
        ({"templates": ["product-photo v9"]}, ["body", "matrix", "templates"], "unknown"),
        ({"seeds": 999}, ["body", "matrix", "seeds"], "at most"),
        ({"mode": "shuffle"}, ["body", "matrix"], "mode must be product or zip"),
    ],
)
def test_a_bad_matrix_is_a_problem_naming_the_axis_and_creates_nothing(
    creative_api, template_version, recipe, style_a, matrix, loc, text
):
    response = creative_api.post("/campaigns", _body(template_version, recipe, matrix=matrix))
    body = assert_problem(response, 422)
    assert any(e["loc"] == loc and text in e["msg"] for e in body["errors"]), body["errors"]
    assert not Campaign.objects.exists()


def test_two_different_templates_in_the_matrix_are_refused_naming_the_field(
    creative_api, template_version, recipe
):
    other = prompt_template_version_create(name="game-asset", body="{name} as a game sprite")
    matrix = {"template": [template_version.pk, other.pk]}
    body = assert_problem(
        creative_api.post("/campaigns", _body(template_version, recipe, matrix=matrix)), 422
    )
    assert body["errors"][0]["loc"] == ["body", "matrix", "templates"]
    assert "not different templates" in body["errors"][0]["msg"]
    assert not Campaign.objects.exists()


def test_an_unknown_axis_is_refused_by_the_schema(creative_api, template_version, recipe):
    response = creative_api.post("/campaigns", _body(template_version, recipe, matrix={"seedz": 3}))
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"][:3] == ["body", "payload", "matrix"]
    assert not Campaign.objects.exists()


def test_an_uploaded_csv_takes_the_matrix_as_json_text(
    creative_api, template_version, v2, recipe, products_csv, handoffs
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    def post(matrix: str):
        return creative_api.client.post(
            "/api/v1/campaigns/csv",
            {
                "name": "Upload",
                "template": v2.pk,  # the active version; the axis replaces it
                "recipe": recipe.pk,
                "matrix": matrix,
                "csv_file": SimpleUploadedFile("products.csv", products_csv, "text/csv"),
            },
            headers=creative_api.headers,
        )

    bad = assert_problem(post('{"templates": ["product-photo v7"]}'), 422)
    assert bad["errors"][0]["loc"] == ["body", "matrix", "templates"]
    good = post(json.dumps({"templates": [template_version.pk, v2.pk]}))
    assert good.status_code == 201, good.content
    campaign = Campaign.objects.get(pk=good.json()["id"])
    assert campaign.items.filter(template_version=v2).count() == len(campaign.csv_rows)


def test_the_openapi_document_shows_the_idempotency_key_header_on_creating_posts(client):
    schema = client.get("/api/v1/openapi.json").json()

    def headers(path: str, method: str) -> list[str]:
        operation = schema["paths"][f"/api/v1{path}"][method]
        return [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]

    for path in ("/campaigns", "/campaigns/csv", "/webhooks"):
        assert headers(path, "post") == ["Idempotency-Key"], path
    assert "Idempotency-Key" not in headers("/campaigns/estimate", "post")
    matrix = schema["components"]["schemas"]["MatrixIn"]
    assert {"seeds", "loras", "recipes", "templates", "guidance", "steps"} <= set(
        matrix["properties"]
    )


def test_an_idempotent_error_echoing_a_nul_is_stored_and_replayed(creative_api):
    headers = {"Idempotency-Key": "nul-1"}
    body = {"url": "https://hooks.example.com/", "events": ["item.\u0000\udb44approved"]}
    first = creative_api.post("/webhooks", body, headers=headers)
    assert first.status_code == 422, first.content
    again = creative_api.post("/webhooks", body, headers=headers)
    assert again.status_code == 422
    assert again["Idempotent-Replayed"] == "true"


def test_an_idempotent_post_with_a_broken_multipart_body_is_a_client_error(creative_api):
    response = creative_api.client.post(
        "/api/v1/webhooks",
        data=b'{"url": "https://hooks.example.com/", "events": ["item.approved"]}',
        content_type="multipart/form-data",
        headers=creative_api.headers | {"Idempotency-Key": "broken-1"},
    )
    assert response.status_code < 500, response.content
