"""JPEG blockiness, extreme saturation, style distance to references, near-duplicates."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from review.quality import score_image
from review.quality.similarity import hamming, phash_hex, style_score
from review.services import item_score, reference_image_add
from studio.errors import InputError
from tests.conftest import item_as_generated
from tests.review.conftest import make_image


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _saturated(image: Image.Image, factor: float = 4.0) -> Image.Image:
    hsv = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0, 255)
    return Image.fromarray(cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["sharp_scene", "product", "blurred_scene", "washed_out"])
def test_heavy_jpeg_compression_is_called_blocky(name) -> None:
    clean = score_image(make_image(name))
    fine = score_image(_jpeg(make_image(name), 90))
    heavy = score_image(_jpeg(make_image(name), 8))

    assert clean.scores["blockiness"] == 1.0
    assert fine.scores["blockiness"] > 0.9
    assert heavy.scores["blockiness"] < 0.3
    assert any(r.code == "artefacts" and "blocks" in r.text for r in heavy.reasons)
    assert not any("blocks" in r.text for r in fine.reasons)


def test_an_aligned_checkerboard_is_not_mistaken_for_jpeg_blocks() -> None:
    # The sharp scene holds an 8-pixel checkerboard on the 8x8 grid: strong edges, no seams.
    card = score_image(make_image("sharp_scene"))

    assert card.measures["block_seam_fraction"] < 0.25


def test_extreme_saturation_is_flagged_and_normal_colour_is_not() -> None:
    normal = score_image(make_image("sharp_scene"))
    loud = score_image(_saturated(make_image("sharp_scene")))

    assert normal.scores["saturation"] == 1.0
    assert loud.scores["saturation"] < 0.2
    assert any(r.code == "artefacts" and "oversaturated" in r.text for r in loud.reasons)


def test_a_product_on_white_is_not_oversaturated() -> None:
    assert score_image(make_image("product")).scores["saturation"] == 1.0


def test_a_hard_failure_scores_zero_on_the_artefact_scores_too() -> None:
    card = score_image(make_image("blank"))

    assert card.hard_fail
    assert card.scores["blockiness"] == card.scores["saturation"] == 0.0


def test_the_perceptual_hash_survives_blur_resize_and_compression_but_not_a_new_picture() -> None:
    scene = phash_hex(make_image("sharp_scene"))

    assert len(scene) == 16
    assert hamming(scene, phash_hex(make_image("soft_scene"))) <= 4
    assert hamming(scene, phash_hex(make_image("sharp_scene").resize((256, 256)))) <= 4
    assert hamming(scene, phash_hex(_jpeg(make_image("sharp_scene"), 30))) <= 4
    assert hamming(scene, phash_hex(make_image("product"))) >= 20


def test_style_scores_the_distance_to_the_nearest_reference() -> None:
    scene, product = phash_hex(make_image("sharp_scene")), phash_hex(make_image("product"))

    on_style = style_score(phash_hex(make_image("soft_scene")), [product, scene], ok=14, bad=30)
    off_style = style_score(scene, [product], ok=14, bad=30)
    no_references = style_score(scene, [], ok=14, bad=30)

    assert on_style[0] == 1.0 and on_style[1] <= 4
    assert off_style[0] == 0.0
    assert off_style[2][0].code == "off-style"
    assert off_style[2][0].detail.startswith("perceptual-hash distance")
    assert no_references == (None, None, [])


def test_an_image_far_from_the_campaigns_references_gets_a_low_style_score(
    settings, campaign, creative
) -> None:
    settings.STUDIO_CLIP_MODEL = ""
    reference_image_add(
        campaign=campaign,
        upload=SimpleUploadedFile("look.png", _png(make_image("product"))),
        user=creative,
    )
    near, far = list(campaign.items.all()[:2])
    item_as_generated(near, _png(make_image("blurred_product")))
    item_as_generated(far, _png(make_image("sharp_scene")))

    near_result = item_score(item_id=near.pk)
    far_result = item_score(item_id=far.pk)

    assert near_result.scores["style"] == 1.0
    assert far_result.scores["style"] == 0.0
    assert "off-style" in far_result.reason_codes
    assert far_result.verdict != "approved"


def test_a_reference_that_is_not_an_image_is_refused_naming_the_field(campaign, creative) -> None:
    with pytest.raises(InputError, match="^image: not a PNG, JPEG or WEBP image"):
        reference_image_add(
            campaign=campaign, upload=SimpleUploadedFile("x.png", b"not an image"), user=creative
        )


def test_a_near_duplicate_within_the_campaign_is_found_by_its_stored_hash(
    settings, campaign
) -> None:
    settings.STUDIO_CLIP_MODEL = ""
    first, second, third = list(campaign.items.all()[:3])
    item_as_generated(first, _png(make_image("sharp_scene")))
    item_as_generated(second, _png(_jpeg(make_image("sharp_scene"), 60)))
    item_as_generated(third, _png(make_image("product")))

    results = [item_score(item_id=item.pk) for item in (first, second, third)]

    assert results[0].phash == phash_hex(make_image("sharp_scene"))
    assert results[0].scores["uniqueness"] == 1.0
    assert results[1].scores["uniqueness"] == 0.0
    assert any(
        r["code"] == "duplicate" and f"item {first.pk}" in r["detail"] for r in results[1].reasons
    )
    assert results[1].verdict != "approved"
    assert results[2].scores["uniqueness"] == 1.0


def test_near_duplicates_are_looked_for_only_within_the_same_campaign(
    settings, campaign, template_version, recipe, products_csv, creative
) -> None:
    from generation.services import campaign_submit

    settings.STUDIO_CLIP_MODEL = ""
    other = campaign_submit(
        name="Other",
        template_version=template_version,
        recipe=recipe,
        csv_bytes=products_csv,
        csv_filename="products.csv",
        variations=1,
        user=creative,
        base_seed=1,
    )
    mine, theirs = campaign.items.first(), other.items.first()
    item_as_generated(mine, _png(make_image("sharp_scene")))
    item_as_generated(theirs, _png(make_image("sharp_scene")))
    item_score(item_id=mine.pk)

    assert item_score(item_id=theirs.pk).scores["uniqueness"] == 1.0


def test_a_thumbnail_too_small_to_judge_is_not_called_blocky() -> None:
    from tests.conftest import textured_png

    for seed in range(8):
        card = score_image(Image.open(io.BytesIO(textured_png(seed))).convert("RGB"))
        assert card.scores["blockiness"] == 1.0
