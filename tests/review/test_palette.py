"""Dominant colours are named from a fixed palette, largest first, and stored when scoring."""

from __future__ import annotations

from PIL import Image

from review.quality.palette import dominant_colours
from tests.conftest import route_items


def test_a_red_product_on_white_is_white_then_red():
    image = Image.new("RGB", (200, 200), (250, 250, 250))
    image.paste((200, 30, 40), (50, 50, 150, 150))

    colours = dominant_colours(image)

    assert [(c["name"], c["share"]) for c in colours] == [("white", 0.75), ("red", 0.25)]


def test_a_colour_under_a_tenth_of_the_frame_is_not_a_tag():
    image = Image.new("RGB", (100, 100), (40, 90, 200))
    image.paste((245, 215, 50), (0, 0, 20, 20))  # 4% yellow

    assert [c["name"] for c in dominant_colours(image)] == ["blue"]


def test_the_scoring_stage_stores_the_palette(campaign):
    (item,) = route_items(campaign, to="review", count=1)

    palette = item.quality.palette
    assert palette and all(set(c) == {"name", "share", "rgb"} for c in palette)
    assert palette == sorted(palette, key=lambda c: -c["share"])
