"""Content screening with the bundled NudeNet detector: rules per campaign, the stage's
refusal to approve what it could not screen, odd image shapes, and the model file check."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from PIL import Image

from review.models import QualityResult
from review.quality import add_content, decide, default_policy, load_image, score_image
from review.quality import content as content_module
from review.quality.content import (
    CLASSES,
    ScreenResult,
    check_content_rules,
    content_detector,
    default_content_rules,
    judge,
    screen_images,
)
from review.selectors import items_rejected_for
from review.services import item_score
from studio.errors import InputError
from tests.conftest import PRODUCT_TEMPLATE, item_as_generated

skimage = pytest.importorskip("skimage", reason="scikit-image (dev extra) ships the photographs")
pytest.importorskip("onnxruntime", reason="the ml extra brings the detector's runtime")
DATA = Path(skimage.__file__).parent / "data"


def photo(name: str) -> Image.Image:
    return load_image(DATA / name)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def game_campaign(creative, recipe, products_csv):
    """A campaign of another template (faces allowed there)."""
    from generation.services import prompt_template_version_create
    from studio.launch import campaign_launch

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


def _score(campaign, image: Image.Image) -> QualityResult:
    item = item_as_generated(campaign.items.filter(status="queued").first(), png(image))
    return item_score(item_id=item.pk)


# The detector


def test_the_bundled_detector_finds_the_astronauts_face_and_nothing_in_coffee_or_chelsea():
    astronaut, coffee, chelsea = screen_images(
        [photo(n) for n in ("astronaut.png", "coffee.png", "chelsea.png")]
    )

    assert [d["class"] for d in astronaut.detections] == ["FACE_FEMALE"]
    assert 0.65 < astronaut.detections[0]["score"] < 0.8
    x, y, w, h = astronaut.detections[0]["box"]
    assert 150 < x < 200 and 60 < y < 110 and 80 < w < 130 and 80 < h < 130
    assert coffee.detections == [] and chelsea.detections == []
    assert not (astronaut.skipped or coffee.skipped or chelsea.skipped)


@pytest.mark.parametrize("name", ["astronaut.png", "camera.png", "moon.png", "coffee.png"])
def test_it_finds_exactly_what_nudenets_own_detector_finds(name, tmp_path):
    from nudenet import NudeDetector

    path = tmp_path / "photo.png"
    photo(name).save(path)

    theirs = NudeDetector().detect(str(path))
    (ours,) = screen_images([photo(name)])

    def key(d):
        return (d["class"], round(d["score"], 3), list(d["box"]))

    assert sorted(map(key, ours.detections)) == sorted(map(key, theirs))


def test_the_detector_is_loaded_once_per_process():
    assert content_detector() is content_detector()


def test_a_long_panorama_is_screened_in_tiles_with_boxes_in_its_own_pixels():
    astronaut = photo("astronaut.png")
    panorama = Image.new("RGB", (512 * 3, 512), (0, 0, 0))
    for i in range(3):
        panorama.paste(astronaut, (512 * i, 0))

    (result,) = screen_images([panorama])

    faces = sorted(d["box"][0] for d in result.detections if d["class"] == "FACE_FEMALE")
    assert len(faces) == 3
    assert [x // 512 for x in faces] == [0, 1, 2]


# Rules


def _detection(cls: str, score: float) -> dict:
    return {"class": cls, "score": score, "box": [1, 2, 3, 4]}


def test_the_default_rules_reject_nudity_everywhere_and_send_people_to_review_in_product_photos():
    product = {r["code"]: r for r in default_content_rules("product-photo")}
    game = {r["code"]: r for r in default_content_rules("game-assets")}

    assert product["nsfw"]["action"] == "reject" and product["person"]["action"] == "review"
    assert (
        "FACE_FEMALE" in product["person"]["classes"]
        and "FACE_MALE" in product["person"]["classes"]
    )
    assert set(game) == {"nsfw"}
    assert "FEMALE_BREAST_EXPOSED" in game["nsfw"]["classes"]
    assert not any(c.endswith("_COVERED") or c.startswith("FACE") for c in game["nsfw"]["classes"])


def test_which_templates_get_the_person_rule_is_a_setting(settings):
    settings.STUDIO_CONTENT_PERSON_TEMPLATES = ["catalogue-shot"]

    assert {r["code"] for r in default_content_rules("catalogue-shot")} == {"nsfw", "person"}
    assert {r["code"] for r in default_content_rules("product-photo")} == {"nsfw"}


def test_a_rule_fires_from_its_score_and_reject_wins_over_review():
    rules = default_content_rules("product-photo")

    weak = judge([_detection("FACE_MALE", 0.45)], rules)
    face = judge([_detection("FACE_MALE", 0.6)], rules)
    both = judge([_detection("FACE_MALE", 0.6), _detection("BUTTOCKS_EXPOSED", 0.7)], rules)

    assert weak.action == "" and weak.reasons == [] and weak.score == pytest.approx(0.55)
    assert face.action == "review" and [r.code for r in face.reasons] == ["person"]
    assert "FACE_MALE 0.60" in face.reasons[0].detail
    assert both.action == "reject" and {r.code for r in both.reasons} == {"nsfw", "person"}
    assert both.rules == ["person", "nsfw"]
    assert both.score == pytest.approx(0.3)


def test_a_class_no_rule_names_changes_nothing():
    check = judge([_detection("FEET_COVERED", 0.9)], default_content_rules("product-photo"))

    assert check.action == "" and check.score == 1.0 and check.flagged == {}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("nsfw", "must be a list"),
        (
            [{"code": "blur", "classes": ["FACE_MALE"], "min_score": 0.5, "action": "reject"}],
            "unknown rule code",
        ),
        (
            [{"code": "person", "classes": [], "min_score": 0.5, "action": "review"}],
            "at least one class",
        ),
        (
            [{"code": "person", "classes": ["HAT"], "min_score": 0.5, "action": "review"}],
            "unknown classes HAT",
        ),
        (
            [{"code": "person", "classes": ["FACE_MALE"], "min_score": 0.1, "action": "review"}],
            "between 0.25",
        ),
        (
            [{"code": "person", "classes": ["FACE_MALE"], "min_score": True, "action": "review"}],
            "must be a number",
        ),
        (
            [{"code": "person", "classes": ["FACE_MALE"], "min_score": 0.5, "action": "blur"}],
            "action must be",
        ),
        (
            [{"code": "person", "classes": ["FACE_MALE"], "min_score": 0.5, "action": "review"}]
            * 2,
            "given twice",
        ),
    ],
)
def test_bad_rules_are_refused_naming_the_field(rules, message):
    with pytest.raises(InputError) as raised:
        check_content_rules(rules)

    assert raised.value.errors[0].field == "content_rules"
    assert message in raised.value.errors[0].message


def test_classes_are_stored_in_the_detectors_order_once():
    (rule,) = check_content_rules(
        [
            {
                "code": "person",
                "classes": ["FACE_MALE", "FACE_FEMALE", "FACE_MALE"],
                "min_score": 0.5,
                "action": "review",
            }
        ]
    )

    assert rule["classes"] == [c for c in CLASSES if c in ("FACE_MALE", "FACE_FEMALE")]


# The stage


def test_the_astronaut_is_flagged_person_in_a_product_photo_campaign_and_not_in_a_game_asset_one(
    campaign, game_campaign
):
    product = _score(campaign, photo("astronaut.png"))
    game = _score(game_campaign, photo("astronaut.png"))

    assert campaign.template_version.template.name == "product-photo"
    assert product.verdict == "review" and "person" in product.reason_codes
    assert product.basis["rule"] == "content" and product.basis["content"] == ["person"]
    assert product.explanation().startswith(
        "Sent to review: the content screen found a person, which this campaign sends to a person"
    )
    assert product.screen == "review"
    assert [d["rule"] for d in product.detections] == ["person"]
    assert game.verdict == "approved" and "person" not in game.reason_codes
    assert game.screen == "clear"
    assert [d["class"] for d in game.detections] == ["FACE_FEMALE"]
    assert "rule" not in game.detections[0]
    # The content score counts only the classes the campaign's rules name.
    assert product.scores["content"] == pytest.approx(1 - game.detections[0]["score"], abs=1e-3)
    assert game.scores["content"] == 1.0


def test_a_person_never_passes_a_product_campaign_however_good_the_photo(campaign):
    campaign.quality_policy.approve_at = campaign.quality_policy.reject_below = 0.0
    campaign.quality_policy.save()

    result = _score(campaign, photo("camera.png"))

    assert result.verdict == "review" and result.reason_codes == ["person"]


def test_a_nude_detection_rejects_the_image_and_the_catalogue_finds_it_by_reason(
    campaign, monkeypatch
):
    # No nude photograph belongs in a test suite: the detector's answer is given here.
    found = ScreenResult(detections=[_detection("FEMALE_BREAST_EXPOSED", 0.81)])
    monkeypatch.setattr(content_module, "screen_images", lambda images: [found for _ in images])

    result = _score(campaign, photo("coffee.png"))

    assert result.verdict == "rejected" and result.reason_codes == ["nsfw"]
    assert result.basis == result.basis | {"rule": "content", "action": "reject"}
    assert "Rejected: the content screen found nudity" in result.explanation()
    assert list(items_rejected_for("nsfw")) == [result.item]


def test_an_unavailable_detector_sends_every_image_to_review_never_approves(campaign, settings):
    settings.STUDIO_CONTENT_MODEL_SHA256 = "0" * 64
    campaign.quality_policy.approve_at = campaign.quality_policy.reject_below = 0.0
    campaign.quality_policy.save()

    result = _score(campaign, photo("coffee.png"))

    assert result.verdict == "review"
    assert result.screen == "unavailable" and result.basis["rule"] == "unscreened"
    (reason,) = result.reasons
    assert reason["text"].startswith("Content screening unavailable")
    assert "content screening unavailable: detector file" in reason["detail"]
    assert "sha256" in reason["detail"]
    assert "never approved automatically" in result.explanation()


def test_with_clip_configured_both_checks_run_with_their_own_scores_and_reasons(
    campaign, tiny_clip
):
    result = _score(campaign, photo("astronaut.png"))

    assert {"clip_match", "clip_unwanted", "content"} <= set(result.scores)
    assert "person" in result.reason_codes
    assert result.notes == []


def test_the_subject_region_is_stored_with_the_detections(campaign):
    packshot = Image.new("RGB", (600, 600), (255, 255, 255))
    packshot.paste(photo("coffee.png").resize((300, 200)), (150, 200))

    result = _score(campaign, packshot)

    x, y, w, h = result.subject_box
    assert 140 <= x <= 160 and 190 <= y <= 210 and 290 <= w <= 310 and 190 <= h <= 210
    boxes = result.overlay()
    assert boxes[-1]["kind"] == "subject"
    assert boxes[-1]["left"] == pytest.approx(100 * x / 600, abs=0.01)


# Odd images: screened or refused with a reason, never a crash


def _cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    photo("coffee.png").convert("CMYK").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _sixteen_bit_png() -> bytes:
    grey = np.asarray(photo("camera.png").convert("L"), dtype=np.uint16) * 257
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    return buffer.getvalue()


def _rgba_png() -> bytes:
    rgba = photo("astronaut.png").convert("RGBA")
    rgba.putalpha(128)
    return png(rgba)


ODD = {
    "1x4000": lambda: png(Image.new("RGB", (1, 4000), (200, 30, 30))),
    "4000x40 banner": lambda: png(photo("coffee.png").resize((4000, 40))),
    "greyscale": lambda: png(photo("camera.png").convert("L")),
    "16-bit greyscale": _sixteen_bit_png,
    "alpha": _rgba_png,
    "palette": lambda: png(photo("chelsea.png").convert("P")),
    "cmyk jpeg": _cmyk_jpeg,
}


@pytest.mark.parametrize("kind", ODD)
def test_an_image_of_an_unusual_shape_or_mode_is_screened_or_refused_with_a_reason(kind):
    image = load_image(io.BytesIO(ODD[kind]()))

    card = score_image(image)
    (screen,) = screen_images([image])
    add_content(card, screen, default_content_rules("product-photo"))
    decision = decide(card, **default_policy())

    assert image.mode == "RGB"
    assert all(0.0 <= v <= 1.0 for v in card.scores.values())
    if card.hard_fail:
        assert decision.verdict == "rejected"
    elif screen.skipped:
        assert screen.skipped.startswith("content screening refused")
        assert card.screen == "unavailable" and decision.verdict != "approved"
    else:
        assert card.screen in {"clear", "review"}


def test_a_16_bit_image_is_scaled_to_8_bits_not_clipped_to_white():
    image = load_image(io.BytesIO(_sixteen_bit_png()))
    card = score_image(image)

    assert abs(np.asarray(image).mean() - np.asarray(photo("camera.png")).mean()) < 2
    assert not card.hard_fail and card.scores["exposure"] > 0.9


def test_an_odd_image_goes_through_the_stage_without_failing(campaign):
    rows = []
    for kind in ("1x4000", "4000x40 banner", "cmyk jpeg", "16-bit greyscale"):
        item = item_as_generated(campaign.items.filter(status="queued").first(), ODD[kind]())
        rows.append(item_score(item_id=item.pk))

    thin, banner, cmyk, deep = rows
    assert thin.verdict == "rejected" and thin.hard_fail  # one colour: blank
    assert banner.screen == "unavailable" and banner.verdict != "approved"
    assert "too narrow to screen" in " ".join(r["detail"] for r in banner.reasons)
    assert cmyk.screen == "clear" and deep.screen == "review"  # the cameraman is a person


# The model file


def test_manage_py_check_passes_with_the_bundled_model():
    call_command("check")


def test_a_missing_detector_file_fails_the_check_clearly(settings, tmp_path):
    settings.STUDIO_CONTENT_MODEL = str(tmp_path / "gone.onnx")

    with pytest.raises(SystemCheckError, match=r"review\.E001.*gone\.onnx is missing"):
        call_command("check")


def test_an_altered_detector_file_fails_the_check_and_is_not_loaded(settings, tmp_path):
    altered = tmp_path / "320n.onnx"
    shutil.copy(content_module.model_path(), altered)
    data = bytearray(altered.read_bytes())
    data[-1] ^= 0xFF
    altered.write_bytes(bytes(data))
    settings.STUDIO_CONTENT_MODEL = str(altered)

    with pytest.raises(SystemCheckError, match=r"review\.E001.*has sha256 .*expected c15d82"):
        call_command("check")
    (result,) = screen_images([photo("coffee.png")])
    assert result.skipped.startswith("content screening unavailable: detector file")


def test_without_nudenet_installed_the_check_only_warns(settings, monkeypatch):
    from review import checks

    monkeypatch.setattr(content_module, "model_path", lambda: None)
    settings.STUDIO_CONTENT_MODEL = ""

    issues = checks.content_detector_check()

    assert [issue.id for issue in issues] == ["review.W001"]
    assert "content screening unavailable" in issues[0].msg


def test_the_web_process_never_imports_onnxruntime():
    # The web image has no `ml` extra: its URLs, views and forms (and `manage.py check`)
    # must load without onnxruntime; only a worker that screens an image imports it.
    import subprocess
    import sys

    code = (
        "import django, sys; django.setup(); import studio.urls; "
        "from django.core.management import call_command; call_command('check'); "
        "from django.test import Client; "
        "assert 'onnxruntime' not in sys.modules, 'onnxruntime imported'; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="studio.settings", SECRET_KEY="x")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr


def test_a_campaign_scored_without_a_policy_gets_its_templates_content_rules(campaign):
    from review.models import QualityPolicy

    QualityPolicy.objects.filter(campaign=campaign).delete()

    result = _score(campaign, photo("astronaut.png"))

    policy = QualityPolicy.objects.get(campaign=campaign)
    assert {rule["code"] for rule in policy.content_rules} == {"nsfw", "person"}
    assert result.verdict == "review" and result.reason_codes == ["person"]
