"""Content screening on the pages: boxes over the image on the review and asset pages, and
content rules on the calibration page with how many images each would move."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.urls import reverse

from review.models import QualityResult
from review.quality import load_image
from review.selectors import calibration
from review.services import item_score
from tests.conftest import item_as_generated

skimage = pytest.importorskip("skimage", reason="scikit-image (dev extra) ships the photographs")
pytest.importorskip("onnxruntime", reason="the ml extra brings the detector's runtime")
DATA = Path(skimage.__file__).parent / "data"


def _png(name: str) -> bytes:
    buffer = io.BytesIO()
    load_image(DATA / name).save(buffer, format="PNG")
    return buffer.getvalue()


def score_photos(campaign, *names: str) -> list[QualityResult]:
    results = []
    for name in names:
        item = item_as_generated(campaign.items.filter(status="queued").first(), _png(name))
        results.append(item_score(item_id=item.pk))
    return results


def test_the_review_page_draws_the_detectors_box_over_the_image_on_demand(
    reviewer_client, campaign
):
    (result,) = score_photos(campaign, "astronaut.png")
    assert result.verdict == "review"
    x, y, w, h = result.detections[0]["box"]

    page = reviewer_client.get(reverse("review:queue")).content.decode()

    figure = page[page.index("<figure>") : page.index("</figure>")]
    assert "data-detections" in figure
    assert "studio/detections.js" in figure and "studio/detections.css" in figure
    assert 'class="detection-box detection flagged" data-rule="person"' in figure
    assert f"left: {100 * x / 512:.2f}%; top: {100 * y / 512:.2f}%" in figure
    assert f"width: {100 * w / 512:.2f}%; height: {100 * h / 512:.2f}%" in figure
    assert "face female 0.72 · person" in figure
    assert 'class="detections-overlay" hidden' in figure
    assert "Content screen:" in figure and "face_female 0.72 (person)" in figure
    # The reason, in the shared vocabulary's words, next to the scores.
    assert 'data-code="person"' in page and "content</span><progress" in page


def test_the_review_page_says_when_the_screen_found_nothing(reviewer_client, campaign):
    campaign.quality_policy.approve_at = 1.0
    campaign.quality_policy.save()
    (result,) = score_photos(campaign, "chelsea.png")
    assert result.verdict == "review"

    page = reviewer_client.get(reverse("review:queue")).content.decode()

    assert "Content screen:" in page and "nothing found." in page
    assert "detection-box detection" not in page


def test_the_asset_page_draws_the_boxes_too(manager_client, game_campaign_factory):
    from catalogue.services import asset_publish

    game = game_campaign_factory()
    (result,) = score_photos(game, "astronaut.png")
    assert result.verdict == "approved"
    asset = asset_publish(item_id=result.item_id)

    page = manager_client.get(reverse("catalogue:asset", args=[asset.pk])).content.decode()

    figure = page[page.index("<figure>") : page.index("</figure>")]
    assert "data-detections" in figure
    assert 'class="detection-box detection" data-rule=""' in figure
    assert "face female 0.72" in figure


@pytest.fixture
def game_campaign_factory(creative, recipe, products_csv):
    def make():
        from generation.services import prompt_template_version_create
        from studio.launch import campaign_launch
        from tests.conftest import PRODUCT_TEMPLATE

        version = prompt_template_version_create(name="game-assets", body=PRODUCT_TEMPLATE)
        return campaign_launch(
            name="Dungeon loot",
            template_version=version,
            recipe=recipe,
            csv_bytes=products_csv,
            csv_filename="products.csv",
            variations=1,
            user=creative,
        )

    return make


# Calibration


def test_calibration_counts_the_images_each_content_rule_catches_and_moves(campaign):
    score_photos(campaign, "astronaut.png", "camera.png", "coffee.png")
    policy = campaign.quality_policy
    without_person = [rule for rule in policy.content_rules if rule["code"] != "person"]
    strict_person = [
        rule | {"min_score": 0.7} if rule["code"] == "person" else rule
        for rule in policy.content_rules
    ]

    same = calibration(
        campaign=campaign, approve_at=policy.approve_at, reject_below=policy.reject_below
    )
    off = calibration(
        campaign=campaign,
        approve_at=policy.approve_at,
        reject_below=policy.reject_below,
        content_rules=without_person,
    )
    strict = calibration(
        campaign=campaign,
        approve_at=policy.approve_at,
        reject_below=policy.reject_below,
        content_rules=strict_person,
    )

    rules = {rule["code"]: rule for rule in same["rules"]}
    assert same["moved"] == 0 and same["screened"] == 3
    assert rules["person"]["caught"] == 2 and rules["person"]["moved"] == 2
    assert rules["nsfw"]["caught"] == 0 and rules["nsfw"]["moved"] == 0
    assert off["moves"] == [{"from": "review", "to": "approved", "count": 2}]
    assert [rule["code"] for rule in off["rules"]] == ["nsfw"]
    # From 0.70 the cameraman (0.58) passes and the astronaut (0.72) does not.
    assert {rule["code"]: rule["caught"] for rule in strict["rules"]}["person"] == 1
    assert strict["moves"] == [{"from": "review", "to": "approved", "count": 1}]


def _rules_post(**overrides) -> dict:
    from review.quality.content import NSFW_CLASSES, PERSON_CLASSES

    data = {
        "approve_at": "0.7",
        "reject_below": "0.4",
        "unwanted_concepts": "text",
        "nsfw_action": "reject",
        "nsfw_min_score": "0.4",
        "nsfw_classes": list(NSFW_CLASSES),
        "person_action": "review",
        "person_min_score": "0.5",
        "person_classes": list(PERSON_CLASSES),
    }
    return data | overrides


def test_the_calibration_page_shows_the_rules_and_what_each_would_move(manager_client, campaign):
    score_photos(campaign, "astronaut.png", "coffee.png")
    url = reverse("review:calibrate", args=[campaign.pk])

    page = manager_client.get(url).content.decode()
    preview = manager_client.get(
        url, _rules_post(person_action="off"), headers={"HX-Request": "true"}
    ).content.decode()

    assert 'id="rule-person"' in page and 'id="rule-nsfw"' in page
    assert '<option value="review" selected>Send to review</option>' in page
    assert 'value="FACE_FEMALE"' in page and "checked" in page
    assert '<tr data-rule="person"><th scope="row">Shows a person</th>' in page
    assert '<td class="num">1</td><td class="num">1</td></tr>' in page
    assert preview.lstrip().startswith('<section id="preview">')
    assert "1 review → approved" in preview
    assert 'data-rule="person"' not in preview


def test_a_manager_changes_the_content_rules_on_the_calibration_page(manager_client, campaign):
    url = reverse("review:calibrate", args=[campaign.pk])

    response = manager_client.post(
        url,
        _rules_post(person_action="reject", person_min_score="0.6", person_classes=["FACE_MALE"]),
    )

    assert response.status_code == 302
    campaign.quality_policy.refresh_from_db()
    rules = {rule["code"]: rule for rule in campaign.quality_policy.content_rules}
    assert rules["person"] == {
        "code": "person",
        "classes": ["FACE_MALE"],
        "min_score": 0.6,
        "action": "reject",
    }
    assert rules["nsfw"]["action"] == "reject"


def test_turning_a_rule_off_removes_it_and_a_post_without_rule_fields_keeps_them(
    manager_client, campaign
):
    url = reverse("review:calibrate", args=[campaign.pk])

    manager_client.post(url, _rules_post(person_action="off"))
    campaign.quality_policy.refresh_from_db()
    after_off = [rule["code"] for rule in campaign.quality_policy.content_rules]
    manager_client.post(url, {"approve_at": "0.8", "reject_below": "0.3"})
    campaign.quality_policy.refresh_from_db()

    assert after_off == ["nsfw"]
    assert [rule["code"] for rule in campaign.quality_policy.content_rules] == ["nsfw"]
    assert campaign.quality_policy.approve_at == 0.8


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"person_classes": []}, "person_classes", "Pick at least one class."),
        ({"nsfw_min_score": "0.1"}, "nsfw_min_score", "greater than or equal to 0.25"),
        ({"person_min_score": ""}, "person_min_score", "Give the score at which the rule acts."),
        ({"person_action": "delete"}, "person_action", "Select a valid choice"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field_and_nothing_is_saved(
    manager_client, campaign, overrides, field, message
):
    url = reverse("review:calibrate", args=[campaign.pk])
    before = list(campaign.quality_policy.content_rules)

    response = manager_client.post(url, _rules_post(**overrides))

    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    campaign.quality_policy.refresh_from_db()
    assert campaign.quality_policy.content_rules == before


def test_a_product_photo_campaign_starts_with_the_person_rule_and_others_without(
    campaign, game_campaign_factory
):
    game = game_campaign_factory()

    assert {r["code"] for r in campaign.quality_policy.content_rules} == {"nsfw", "person"}
    assert {r["code"] for r in game.quality_policy.content_rules} == {"nsfw"}


def test_the_catalogues_reason_filter_offers_the_new_reason_codes():
    from catalogue.forms import CatalogueSearchForm

    offered = {value for value, _ in CatalogueSearchForm().fields["reason"].choices}

    assert {"nsfw", "person", "cropped"} <= offered
