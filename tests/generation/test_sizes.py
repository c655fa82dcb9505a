from __future__ import annotations

import pytest

from generation.sizes import channel_size, generation_size
from studio.errors import InputError


def test_named_channels_and_custom_sizes_give_the_delivery_size():
    assert channel_size("instagram") == (1080, 1080)
    assert channel_size(" TikTok ") == (1080, 1920)
    assert channel_size("linkedin") == (1200, 627)
    assert channel_size("1500x500") == (1500, 500)


def test_the_generation_size_keeps_the_aspect_ratio_at_the_models_native_area():
    size = generation_size(1080, 1920, native_width=512, native_height=512, backend="diffusers")

    assert size == (384, 680)
    assert all(side % 8 == 0 for side in size)


def test_a_backend_that_needs_multiples_of_64_gets_them():
    size = generation_size(1080, 1920, native_width=1024, native_height=1024, backend="stability")

    assert size == (768, 1344)


def test_a_size_beyond_what_the_model_supports_is_refused_with_the_size_it_would_need():
    with pytest.raises(InputError, match=r"would need 4096x1024, outside the 64-2048 px"):
        generation_size(4000, 1000, native_width=2048, native_height=2048, backend="diffusers")


@pytest.mark.parametrize("channel", ["poster", "10x10", "1080*1080", ""])
def test_an_unknown_or_impossible_channel_is_refused(channel):
    with pytest.raises(InputError, match="channels:"):
        channel_size(channel)
