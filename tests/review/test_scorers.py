from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from review.quality import ScoreCard, load_image, score_image
from review.quality.heuristics import NEEDS_VAR, WORK_SIZE

MakeImage = Callable[[str], Image.Image]

ALL_IMAGES = [
    "sharp_scene",
    "soft_scene",
    "blurred_scene",
    "product",
    "blurred_product",
    "washed_out",
    "overexposed",
    "underexposed",
    "blank",
    "black",
    "noise",
]


def _reasons(card: ScoreCard, code: str, words: str = "") -> list:
    return [r for r in card.reasons if r.code == code and words in f"{r.text} {r.detail}"]


# Sharpness


def test_a_sharp_scene_is_sharper_than_a_soft_one_which_is_sharper_than_a_blurred_one(
    image: MakeImage,
) -> None:
    sharp, soft, blurred = (
        score_image(image(name)) for name in ("sharp_scene", "soft_scene", "blurred_scene")
    )

    assert sharp.measures["laplacian_var"] > soft.measures["laplacian_var"]
    assert soft.measures["laplacian_var"] > blurred.measures["laplacian_var"]
    assert sharp.scores["sharpness"] > soft.scores["sharpness"] > blurred.scores["sharpness"]
    assert sharp.scores["sharpness"] >= 0.9
    assert 0.3 < soft.scores["sharpness"] < 0.95
    assert blurred.scores["sharpness"] < 0.1
    assert not _reasons(sharp, "blur")
    assert _reasons(blurred, "blur", "frame sharpness")


def test_a_sharp_product_on_a_white_backdrop_is_not_flagged_blurry(image: MakeImage) -> None:
    card = score_image(image("product"))

    assert card.scores["sharpness"] >= 0.8
    assert not _reasons(card, "blur")
    assert card.measures["plain_backdrop"] == 1.0
    assert 0.05 < card.measures["subject_fraction"] < 0.5


def test_the_product_would_look_blurry_if_the_whole_frame_were_measured(
    image: MakeImage,
) -> None:
    # Guards the point of the subject mask: the flat backdrop dilutes a whole-frame
    # Laplacian variance below the "blurry" line for this very image.
    frame = cv2.resize(np.asarray(image("product")), (WORK_SIZE, WORK_SIZE), cv2.INTER_AREA)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    whole_frame_variance = cv2.Laplacian(grey, cv2.CV_32F, ksize=1).var()

    assert whole_frame_variance < NEEDS_VAR
    assert score_image(image("product")).measures["laplacian_var"] > 2 * NEEDS_VAR


def test_the_same_product_blurred_is_flagged_blurry(image: MakeImage) -> None:
    sharp = score_image(image("product"))
    blurred = score_image(image("blurred_product"))

    assert blurred.scores["sharpness"] < 0.1
    assert blurred.scores["sharpness"] < sharp.scores["sharpness"]
    [reason] = _reasons(blurred, "blur", "subject sharpness")
    assert f"needs {NEEDS_VAR:.0f}" in reason.detail


def test_sharpness_is_comparable_across_image_sizes(image: MakeImage) -> None:
    # The soft scene is not saturated at either end, so a size bias would show.
    soft = image("soft_scene")
    scores = [
        score_image(soft.resize((size, size), Image.Resampling.LANCZOS)).scores["sharpness"]
        for size in (512, 768, 2048)
    ]
    reference = score_image(soft).scores["sharpness"]

    assert all(abs(score - reference) < 0.1 for score in scores)


def test_a_plain_backdrop_with_no_distinct_subject_is_measured_as_a_whole_frame() -> None:
    pixels = np.full((600, 600, 3), 255, np.uint8)
    for i in range(30):  # dust specks, not a subject
        x, y = 40 + i * 17, 60 + (i * 131) % 480
        pixels[y : y + 3, x : x + 3] = 0

    card = score_image(Image.fromarray(pixels))

    assert not card.hard_fail
    assert card.measures["plain_backdrop"] == 1.0
    assert card.measures["subject_fraction"] == 1.0


# Exposure and contrast


def test_a_white_studio_backdrop_is_not_counted_as_clipped_highlights(image: MakeImage) -> None:
    product = image("product")
    luma = np.asarray(product.convert("L"))

    card = score_image(product)

    assert np.mean(luma >= 250) > 0.5  # most of the frame is pure white...
    assert card.measures["clipped_high"] < 0.03  # ...but none of it is the subject
    assert card.scores["exposure"] >= 0.9
    assert not _reasons(card, "exposure", "Overexposed")


def test_an_overexposed_frame_scores_low_exposure_with_a_reason(image: MakeImage) -> None:
    card = score_image(image("overexposed"))

    assert card.scores["exposure"] < 0.2
    assert card.measures["clipped_high"] > 0.3
    assert _reasons(card, "exposure", "Overexposed")


def test_an_underexposed_frame_scores_low_exposure_with_a_reason(image: MakeImage) -> None:
    card = score_image(image("underexposed"))

    assert card.scores["exposure"] < 0.2
    assert _reasons(card, "exposure", "too dark")


def test_a_washed_out_frame_scores_low_contrast_with_a_reason(image: MakeImage) -> None:
    washed = score_image(image("washed_out"))
    normal = score_image(image("sharp_scene"))

    assert washed.scores["contrast"] < 0.2
    assert normal.scores["contrast"] >= 0.9
    assert washed.measures["luma_std"] < normal.measures["luma_std"]
    assert _reasons(washed, "contrast", "luma std")


def test_a_well_made_scene_has_no_reasons(image: MakeImage) -> None:
    for name in ("sharp_scene", "product"):
        card = score_image(image(name))
        assert card.reasons == []
        assert not card.hard_fail


# Artefacts


def test_a_blank_single_colour_frame_is_a_hard_failure(image: MakeImage) -> None:
    card = score_image(image("blank"))

    assert card.hard_fail
    assert card.reasons[0].code == "blank" and "blank" in card.reasons[0].text
    assert set(card.scores.values()) == {0.0}


def test_a_nearly_uniform_frame_with_faint_noise_is_a_hard_failure() -> None:
    rng = np.random.default_rng(1)
    pixels = np.clip(128 + rng.normal(0, 1.5, (512, 512, 3)), 0, 255).astype(np.uint8)

    card = score_image(Image.fromarray(pixels))

    assert card.hard_fail
    assert card.reasons[0].code == "blank" and "blank" in card.reasons[0].text


def test_a_black_frame_is_a_hard_failure(image: MakeImage) -> None:
    card = score_image(image("black"))

    assert card.hard_fail
    assert card.reasons[0].code == "blank" and "black" in card.reasons[0].text


def test_a_uniform_noise_frame_is_a_hard_failure(image: MakeImage) -> None:
    card = score_image(image("noise"))

    assert card.hard_fail
    assert card.reasons[0].code == "noise"


def test_a_small_noise_frame_is_caught_although_it_is_enlarged_for_scoring() -> None:
    # Enlarging to the working size interpolates, which would make noise look smooth.
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)

    card = score_image(Image.fromarray(pixels))

    assert card.hard_fail
    assert card.reasons[0].code == "noise"


def test_a_fine_stripe_pattern_is_not_mistaken_for_noise() -> None:
    pixels = np.zeros((512, 512, 3), np.uint8)
    pixels[:, ::2] = 255  # one-pixel stripes: anti-correlated across, correlated along

    card = score_image(Image.fromarray(pixels))

    assert not card.hard_fail


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_every_score_is_between_zero_and_one(image: MakeImage, name: str) -> None:
    card = score_image(image(name))

    assert set(card.scores) == {
        "sharpness",
        "exposure",
        "contrast",
        "blockiness",
        "saturation",
        "noise",
        "banding",
        "framing",
    }
    assert all(0.0 <= value <= 1.0 for value in card.scores.values())
    assert all(np.isfinite(value) for value in card.measures.values())


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (2000, 40)])
def test_odd_sizes_are_scored_without_error(size: tuple[int, int]) -> None:
    card = score_image(Image.new("RGB", size, (10, 200, 30)))

    assert card.hard_fail


def test_greyscale_and_transparent_images_are_scored_as_rgb(image: MakeImage) -> None:
    product = image("product")
    # A cut-out: transparent where the backdrop was. Scored as shown, on white.
    rgba = product.convert("RGBA")
    alpha = np.where(np.asarray(product.convert("L")) >= 254, 0, 255).astype(np.uint8)
    rgba.putalpha(Image.fromarray(alpha))
    rgba_pixels = np.asarray(rgba).copy()
    rgba_pixels[alpha == 0, :3] = 0  # what is under transparency must not matter

    grey_card = score_image(product.convert("L"))
    cutout_card = score_image(Image.fromarray(rgba_pixels))

    assert not grey_card.hard_fail
    assert grey_card.scores["sharpness"] >= 0.8
    assert cutout_card.measures["plain_backdrop"] == 1.0
    assert cutout_card.measures["backdrop_luma"] > 250
    assert cutout_card.scores["sharpness"] >= 0.8


# Loading files


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_it_loads_png_jpeg_and_webp_as_rgb(image: MakeImage, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"product.{fmt.lower()}"
    image("product").save(path, fmt)

    loaded = load_image(path)

    assert loaded.mode == "RGB"
    assert loaded.size == (1024, 1024)


def test_it_loads_from_an_open_binary_file(image: MakeImage, tmp_path: Path) -> None:
    # The scoring job reads from Django storage, which hands over file objects, not paths.
    path = tmp_path / "product.png"
    image("product").save(path)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG but no more")

    with path.open("rb") as handle:
        loaded = load_image(handle)
    with junk.open("rb") as handle, pytest.raises(ValueError, match=r"junk\.png: "):
        load_image(handle)

    assert loaded.mode == "RGB"
    assert score_image(loaded).scores == score_image(image("product")).scores


def test_a_missing_file_is_a_value_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.png"

    with pytest.raises(ValueError, match="missing.png: no such file"):
        load_image(path)


def test_a_file_that_is_not_an_image_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not an image")

    with pytest.raises(ValueError, match="notes.png: not a PNG, JPEG or WEBP image"):
        load_image(path)


def test_an_image_format_outside_the_allowed_list_is_refused(
    image: MakeImage, tmp_path: Path
) -> None:
    path = tmp_path / "product.gif"
    image("product").save(path, "GIF")

    with pytest.raises(ValueError, match="product.gif: not a PNG, JPEG or WEBP image"):
        load_image(path)


def test_a_truncated_file_is_a_value_error(image: MakeImage, tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    image("product").save(path, "PNG")
    path.write_bytes(path.read_bytes()[:5000])

    with pytest.raises(ValueError, match="cut.png: unreadable image"):
        load_image(path)


def test_a_decompression_bomb_is_refused(
    image: MakeImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.png"
    image("blank").save(path, "PNG")
    # Above MAX_IMAGE_PIXELS Pillow only warns (an error starts at twice that); the warning
    # must be an error too.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1024 * 1024 - 1)

    with pytest.raises(ValueError, match="big.png: image too large"):
        load_image(path)
