"""The less obvious defects production sees, made here from scikit-image's photographs (which
the scorers were not tuned on), and good photographs that are easy to misjudge.

README.md ("What the scorers catch") lists what is caught and what is not.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from review.quality import ScoreCard, decide, default_policy, score_image
from review.quality.similarity import hamming, phash_hex

skimage = pytest.importorskip("skimage", reason="scikit-image (dev extra) ships the photographs")

# The sample photographs the scorers approve as they are (tests/review/test_real_photographs
# covers the others): a defect must be what stops them.
PHOTOS = [
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "brick.png",
    "grass.png",
    "coins.png",
]
# Photographs with a subject (a shallow depth of field needs one; brick and grass are
# textures that a background blur turns into a flat picture).
SUBJECTS = [n for n in PHOTOS if n not in ("brick.png", "grass.png")]
LUMA = np.array([0.299, 0.587, 0.114])


@cache
def _photo(name: str) -> np.ndarray:
    path = Path(skimage.__file__).parent / "data" / name
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(np.float64)
    pixels.setflags(write=False)
    return pixels


def photo(name: str) -> np.ndarray:
    return _photo(name).copy()


def u8(pixels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pixels.clip(0, 255).astype(np.uint8))


def judge(pixels: np.ndarray) -> tuple[str, ScoreCard]:
    card = score_image(Image.fromarray(u8(pixels)))
    return decide(card, **default_policy()).verdict, card


def codes(card: ScoreCard) -> set[str]:
    return {reason.code for reason in card.reasons}


def texts(card: ScoreCard) -> str:
    return " ".join(reason.text for reason in card.reasons)


# The defects


def motion_blur(pixels: np.ndarray, angle: float, length: int = 21) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1
    centre = (length / 2 - 0.5, length / 2 - 0.5)
    kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D(centre, angle, 1), (length, length))
    return cv2.filter2D(u8(pixels), -1, kernel / kernel.sum()).astype(np.float64)


def _ellipse_mask(shape, axes: tuple[float, float]) -> np.ndarray:
    h, w = shape[:2]
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (int(w * axes[0]), int(h * axes[1])), 0, 0, 360, 1, -1)
    return cv2.GaussianBlur(mask, (0, 0), min(h, w) / 30)[..., None]


def blurred_centre(pixels: np.ndarray) -> np.ndarray:
    """Focus missed: the middle of the frame soft, the surroundings sharp."""
    soft = cv2.GaussianBlur(u8(pixels), (0, 0), 4).astype(np.float64)
    mask = _ellipse_mask(pixels.shape, (1 / 3, 1 / 3))
    return pixels * (1 - mask) + soft * mask


def blurred_half(pixels: np.ndarray) -> np.ndarray:
    soft = cv2.GaussianBlur(u8(pixels), (0, 0), 4).astype(np.float64)
    out = pixels.copy()
    half = pixels.shape[1] // 2
    out[:, half:] = soft[:, half:]
    return out


def shallow_depth_of_field(pixels: np.ndarray) -> np.ndarray:
    """The subject (centre) in focus, the background thrown out of focus."""
    soft = cv2.GaussianBlur(u8(pixels), (0, 0), 6).astype(np.float64)
    mask = _ellipse_mask(pixels.shape, (1 / 4, 1 / 3))
    return pixels * mask + soft * (1 - mask)


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(u8(pixels)).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB")).astype(np.float64)


def posterised(pixels: np.ndarray, bits: int) -> np.ndarray:
    return np.asarray(ImageOps.posterize(Image.fromarray(u8(pixels)), bits)).astype(np.float64)


def sensor_noise(pixels: np.ndarray, sigma: float = 25) -> np.ndarray:
    """Luminance grain plus weaker colour noise, as a high-ISO sensor gives."""
    rng = np.random.default_rng(0)
    grain = rng.normal(0, sigma, pixels.shape[:2])[..., None]
    return pixels + grain + rng.normal(0, sigma / 2, pixels.shape)


def low_key(pixels: np.ndarray, mean: float = 40) -> np.ndarray:
    """Dark on purpose: the highlights kept at white, a tone curve bringing the mean luma
    down to ``mean`` (on luminance, so colours keep their saturation)."""
    luma = pixels @ LUMA
    base = (luma / np.percentile(luma, 99.5)).clip(0, 1)
    low, high = 0.5, 6.0
    for _ in range(30):  # the curve's exponent, by bisection
        exponent = (low + high) / 2
        low, high = (exponent, high) if np.mean(255 * base**exponent) > mean else (low, exponent)
    target = 255 * base**exponent
    return pixels * (target / np.maximum(luma, 1e-3))[..., None]


def packshot(offset: float = 0.0, size: int = 1024) -> np.ndarray:
    """High-key product shot: the coffee cup cut out onto pure white with a soft shadow;
    ``offset`` moves it sideways (a fraction of the frame)."""
    coffee = u8(photo("coffee.png"))
    mask = np.zeros(coffee.shape[:2], np.uint8)
    cv2.ellipse(mask, (278, 222), (202, 166), 0, 0, 360, 255, -1, cv2.LINE_AA)
    cup = cv2.resize(coffee[56:389, 76:481], None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)
    alpha = cv2.resize(mask[56:389, 76:481], None, fx=1.6, fy=1.6)[..., None] / 255.0
    h, w = alpha.shape[:2]
    canvas = np.full((size, size, 3), 255.0)
    cx, cy = int(size / 2 + offset * size), size // 2
    shadow = np.zeros((size, size), np.float32)
    cv2.ellipse(shadow, (cx + 20, cy + h // 2 - 30), (w // 2, h // 6), 0, 0, 360, 1, -1)
    canvas *= (1 - 0.35 * cv2.GaussianBlur(shadow, (0, 0), 25))[..., None]
    x0, y0 = cx - w // 2, cy - h // 2
    left, top, right, bottom = max(0, x0), max(0, y0), min(size, x0 + w), min(size, y0 + h)
    part = (slice(top - y0, bottom - y0), slice(left - x0, right - x0))
    region = canvas[top:bottom, left:right]
    canvas[top:bottom, left:right] = region * (1 - alpha[part]) + cup[part] * alpha[part]
    return canvas


def shifted(pixels: np.ndarray, fraction: float) -> np.ndarray:
    h, w = pixels.shape[:2]
    matrix = np.float32([[1, 0, int(w * fraction)], [0, 1, int(h * fraction / 2)]])
    warped = cv2.warpAffine(u8(pixels), matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    return warped.astype(np.float64)


def test_the_photographs_used_here_are_approved_as_they_are():
    assert [judge(photo(name))[0] for name in PHOTOS] == ["approved"] * len(PHOTOS)


# Defects that are caught


@pytest.mark.parametrize("angle", [0, 45, 90])
@pytest.mark.parametrize("name", PHOTOS)
def test_motion_blur_in_one_direction_is_never_approved(name, angle):
    verdict, card = judge(motion_blur(photo(name), angle))

    assert verdict != "approved"
    assert "blur" in codes(card)


@pytest.mark.parametrize("name", PHOTOS)
def test_motion_blur_that_keeps_edges_along_it_is_named_as_such(name):
    # Along the streak, edges stay crisp: the Laplacian alone is fooled on the motorcycle.
    _, card = judge(motion_blur(photo(name), 0))

    assert card.measures["directional_balance"] < 0.08


# On brick and grass (fine texture, no coarse structure) a blurred part looks flat rather
# than blurred; the lost contrast still keeps them from approval (README).
@pytest.mark.parametrize("defect", [blurred_centre, blurred_half])
@pytest.mark.parametrize("name", SUBJECTS)
def test_blur_on_part_of_the_frame_is_never_approved(name, defect):
    verdict, card = judge(defect(photo(name)))

    assert verdict != "approved"
    assert "blur" in codes(card)
    assert card.scores["sharpness"] < 0.4


@pytest.mark.parametrize("quality", [5, 10])
@pytest.mark.parametrize("name", PHOTOS)
def test_heavy_jpeg_compression_is_never_approved(name, quality):
    verdict, card = judge(jpeg(photo(name), quality))

    assert verdict != "approved"
    assert codes(card) & {"artefacts", "blur"}


@pytest.mark.parametrize("bits", [2, 3])
@pytest.mark.parametrize("name", PHOTOS)
def test_posterised_banding_is_never_approved(name, bits):
    verdict, card = judge(posterised(photo(name), bits))

    assert verdict != "approved"
    assert "Banding" in texts(card)
    assert card.scores["banding"] == 0.0


@pytest.mark.parametrize("name", PHOTOS)
def test_mild_underexposure_is_never_approved(name):
    verdict, card = judge(photo(name) * 0.55)

    assert verdict != "approved"
    assert "exposure" in codes(card)


# The rocket is a night scene: lifting it by a quarter makes a normal exposure of it.
@pytest.mark.parametrize("name", [n for n in PHOTOS if n != "rocket.jpg"])
def test_mild_overexposure_is_never_approved(name):
    verdict, card = judge(photo(name) * 1.25 + 40)

    assert verdict != "approved"
    assert "exposure" in codes(card)


@pytest.mark.parametrize("name", PHOTOS)
def test_heavy_sensor_noise_over_a_good_photo_is_never_approved(name):
    verdict, card = judge(sensor_noise(photo(name)))

    assert verdict != "approved"
    assert "grainy" in texts(card)
    assert card.measures["noise_sigma"] > 12
    assert not card.hard_fail  # still a picture, not a noise frame


@pytest.mark.parametrize("name", PHOTOS)
def test_light_noise_is_not_called_grainy(name):
    _, card = judge(sensor_noise(photo(name), sigma=3))

    assert "grainy" not in texts(card)


@pytest.mark.parametrize(("offset", "edge"), [(0.33, "right"), (-0.36, "left")])
def test_a_product_cut_by_the_frame_edge_goes_to_review(offset, edge):
    verdict, card = judge(packshot(offset))

    assert verdict == "review"
    assert "cropped" in codes(card)
    assert f"cut off by the {edge} edge" in texts(card)


def test_a_near_duplicate_re_encoded_is_found_by_its_perceptual_hash():
    for name in PHOTOS:
        original = phash_hex(Image.fromarray(u8(photo(name))))
        for copy in (jpeg(photo(name), 75), jpeg(photo(name), 30)):
            assert hamming(original, phash_hex(Image.fromarray(u8(copy)))) <= 4, name


def test_a_near_duplicate_shifted_by_a_few_pixels_is_found_by_its_perceptual_hash():
    found = [
        name
        for name in PHOTOS
        if hamming(
            phash_hex(Image.fromarray(u8(photo(name)))),
            phash_hex(Image.fromarray(u8(shifted(photo(name), 0.005)))),
        )
        <= 4
    ]

    assert len(found) >= len(PHOTOS) - 1, found


def test_unrelated_photographs_are_far_apart_in_perceptual_hash():
    hashes = [phash_hex(Image.fromarray(u8(photo(name)))) for name in PHOTOS]

    assert min(hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]) > 12


# Good photographs that are easy to misjudge


@pytest.mark.parametrize("name", PHOTOS)
def test_a_low_key_photo_dark_on_purpose_is_approved(name):
    pixels = low_key(photo(name))
    verdict, card = judge(pixels)

    assert np.mean(pixels @ LUMA) < 45  # it is dark
    assert np.percentile(pixels @ LUMA, 99.5) > 200  # with real highlights
    assert verdict == "approved", card.reasons
    assert "exposure" not in codes(card)


def test_a_high_key_product_shot_on_white_with_a_soft_shadow_is_approved():
    pixels = packshot()
    verdict, card = judge(pixels)

    assert np.mean(pixels >= 250) > 0.5  # mostly pure white
    assert verdict == "approved", card.reasons
    assert card.reasons == []
    x, y, w, h = card.subject_box
    assert 150 < x < 250 and 200 < y < 300 and 600 < w < 750 and 550 < h < 700


@pytest.mark.parametrize("name", SUBJECTS)
def test_a_shallow_depth_of_field_sharp_subject_blurred_background_is_approved(name):
    verdict, card = judge(shallow_depth_of_field(photo(name)))

    assert verdict == "approved", card.reasons
    assert "blur" not in codes(card)


def test_with_a_shallow_depth_of_field_sharpness_is_measured_on_the_part_in_focus():
    pixels = shallow_depth_of_field(photo("chelsea.png"))
    _, card = judge(pixels)
    whole = score_image(Image.fromarray(u8(cv2.GaussianBlur(u8(pixels), (0, 0), 0.1))))

    assert card.measures["laplacian_var"] < 89  # the whole frame would look soft...
    assert card.measures["in_focus_var"] > 2 * 89  # ...the subject is sharp
    x, y, w, h = card.subject_box
    height, width = pixels.shape[:2]
    assert x > 0 and x + w < width and w < width * 0.75 and h <= height
    assert whole.scores["sharpness"] == card.scores["sharpness"]
