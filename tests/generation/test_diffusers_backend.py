"""The local diffusers backend against the tiny offline model (no database needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")

from generation.backends import BackendError, ImageRequest, LoraSpec, ModelSpec  # noqa: E402
from generation.backends import diffusers as backend  # noqa: E402
from generation.hashing import sha256_path  # noqa: E402


@pytest.fixture(scope="module")
def model(tiny_model) -> ModelSpec:
    return ModelSpec(
        key="tiny-test:1", source=tiny_model["model"], sha256=sha256_path(tiny_model["model"])
    )


def lora(tiny_model, name: str, weight: float = 1.0) -> LoraSpec:
    path = tiny_model["loras"][name]
    return LoraSpec(name=f"{name}:1", path=path, weight=weight, sha256=sha256_path(path))


def request(seed: int = 1, prompt: str = "a red sneaker", **overrides) -> ImageRequest:
    params = dict(
        prompt=prompt,
        negative_prompt="blurry",
        seed=seed,
        width=64,
        height=64,
        steps=2,
        guidance_scale=5.0,
    )
    return ImageRequest(**{**params, **overrides})


def pixels(result) -> np.ndarray:
    return np.asarray(result.image).astype(np.int16)


def one(model, loras, req, *, invariant: bool | None = None) -> np.ndarray:
    (result,) = backend.generate(model, loras, [req], batch_invariant=invariant)
    return pixels(result)


def test_the_tiny_model_makes_pil_images_of_the_requested_size(model):
    results = backend.generate(
        model, [], [request(width=64, height=64), request(width=48, height=32)]
    )

    assert [r.image.size for r in results] == [(64, 64), (48, 32)]
    assert all(r.image.mode == "RGB" for r in results)
    assert [r.seed for r in results] == [1, 1]
    assert all(r.duration_s > 0 and r.device == "cpu" for r in results)
    # Random weights still give structure, not a flat grey square.
    assert pixels(results[0]).std() > 10


def test_the_same_seed_gives_identical_pixels(model):
    assert np.array_equal(one(model, [], request(seed=7)), one(model, [], request(seed=7)))


def test_different_seeds_give_different_images(model):
    assert not np.array_equal(one(model, [], request(seed=7)), one(model, [], request(seed=8)))


@pytest.mark.parametrize("size", [2, 3, 4, 8])
def test_a_batched_image_has_exactly_the_pixels_it_has_when_made_alone(model, size):
    reqs = [request(seed=11 + i, prompt=f"a cat number {i}") for i in range(size)]

    batched = backend.generate(model, [], reqs, batch_invariant=True)

    assert [(r.seed, r.batch_size, r.batch_invariant) for r in batched] == [
        (11 + i, size, True) for i in range(size)
    ]
    for result, req in zip(batched, reqs, strict=True):
        assert np.array_equal(pixels(result), one(model, [], req, invariant=True))


def test_batched_equals_alone_with_two_weighted_loras_too(model, tiny_model):
    loras = [lora(tiny_model, "tiny-style-a", 0.7), lora(tiny_model, "tiny-style-b", 0.4)]
    reqs = [request(seed=31), request(seed=32, prompt="a blue bag"), request(seed=33)]

    batched = backend.generate(model, loras, reqs, batch_invariant=True)

    for result, req in zip(batched, reqs, strict=True):
        assert np.array_equal(pixels(result), one(model, loras, req, invariant=True))


def test_by_default_a_batch_differs_from_alone_by_at_most_one_level_in_rare_pixels(model):
    """Batching speed (STUDIO_BATCH_INVARIANT off): kernels are chosen by the batch's shape."""
    reqs = [request(seed=11 + i, prompt=f"a cat number {i}") for i in range(4)]

    batched = backend.generate(model, [], reqs)

    assert not any(r.batch_invariant for r in batched)
    for result, req in zip(batched, reqs, strict=True):
        diff = np.abs(pixels(result) - one(model, [], req))
        assert diff.max() <= 1
        assert (diff > 0).mean() < 0.001


def test_the_setting_turns_batch_invariance_on(model, settings):
    settings.STUDIO_BATCH_INVARIANT = True

    (result,) = backend.generate(model, [], [request()])

    assert result.batch_invariant is True


def test_an_image_does_not_depend_on_its_neighbours_in_a_batch_of_the_same_size(model):
    target = request(seed=21, prompt="a teapot")
    first = backend.generate(model, [], [target, request(seed=1), request(seed=2)])[0]
    moved = backend.generate(model, [], [request(seed=3, prompt="x"), request(seed=4), target])[2]

    assert np.array_equal(pixels(first), pixels(moved))


def test_requests_with_different_parameters_come_back_in_request_order(model):
    reqs = [request(seed=1), request(seed=2, steps=3), request(seed=3), request(seed=4, width=32)]

    results = backend.generate(model, [], reqs)

    assert [r.seed for r in results] == [1, 2, 3, 4]
    assert [r.batch_size for r in results] == [2, 1, 2, 1]
    assert [r.image.size for r in results] == [(64, 64), (64, 64), (64, 64), (32, 64)]
    assert np.array_equal(pixels(results[1]), one(model, [], reqs[1]))


def test_lora_a_at_full_weight_changes_the_image(model, tiny_model):
    plain = one(model, [], request())
    styled = one(model, [lora(tiny_model, "tiny-style-a")], request())

    assert np.abs(styled - plain).mean() > 1


def test_a_lora_at_half_weight_differs_from_full_weight(model, tiny_model):
    half = one(model, [lora(tiny_model, "tiny-style-a", 0.5)], request())
    full = one(model, [lora(tiny_model, "tiny-style-a", 1.0)], request())

    assert np.abs(half - full).mean() > 1


def test_two_loras_together_differ_from_each_alone(model, tiny_model):
    a, b = lora(tiny_model, "tiny-style-a"), lora(tiny_model, "tiny-style-b")

    both = one(model, [a, b], request())

    assert np.abs(both - one(model, [a], request())).mean() > 1
    assert np.abs(both - one(model, [b], request())).mean() > 1


def test_turning_loras_off_and_on_again_gives_the_same_images(model, tiny_model):
    a = lora(tiny_model, "tiny-style-a")
    plain, styled = one(model, [], request(seed=5)), one(model, [a], request(seed=5))

    assert np.array_equal(one(model, [], request(seed=5)), plain)
    assert np.array_equal(one(model, [a], request(seed=5)), styled)


def test_a_named_scheduler_replaces_the_models_own_for_that_request_only(model):
    own = one(model, [], request(seed=9))
    euler_a = one(model, [], request(seed=9, scheduler="EulerAncestralDiscreteScheduler"))

    assert not np.array_equal(own, euler_a)
    assert np.array_equal(one(model, [], request(seed=9)), own)


def test_the_pipeline_and_loras_load_once_across_consecutive_calls(model, tiny_model):
    a = lora(tiny_model, "tiny-style-a")
    backend.generate(model, [a], [request()])
    before = backend.cache_info()

    backend.generate(model, [a], [request(seed=2)])
    backend.generate(model, [], [request(seed=3)])
    backend.generate(model, [a], [request(seed=4)])
    after = backend.cache_info()

    assert after["models"] == [model.key]
    assert after["pipeline_loads"] == before["pipeline_loads"]
    assert after["lora_loads"] == before["lora_loads"]
    # Unchanged files are not hashed again on each call.
    assert after["hashes"] == before["hashes"]
    assert after["calls"] == before["calls"] + 3


def test_a_lora_file_changed_after_registration_is_refused(model, tiny_model, tmp_path):
    path = tmp_path / "style.safetensors"
    shutil.copyfile(tiny_model["loras"]["tiny-style-a"], path)
    spec = LoraSpec(name="edited:1", path=str(path), weight=1.0, sha256=sha256_path(path))
    backend.generate(model, [spec], [request()])

    shutil.copyfile(tiny_model["loras"]["tiny-style-b"], path)

    with pytest.raises(BackendError, match="edited:1.*style.safetensors.*changed") as caught:
        backend.generate(model, [spec], [request()])
    assert caught.value.retryable is False


def test_a_base_model_folder_changed_after_registration_is_refused(tiny_model, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_model["model"], copy)
    spec = ModelSpec(key="copied:1", source=str(copy), sha256=sha256_path(copy))
    with (copy / "scheduler" / "scheduler_config.json").open("a") as fh:
        fh.write("\n")

    with pytest.raises(BackendError, match="base model.*changed") as caught:
        backend.generate(spec, [], [request()])
    assert str(copy) in str(caught.value)
    assert caught.value.retryable is False


@pytest.mark.parametrize(("width", "height"), [(60, 64), (64, 30), (0, 64)])
def test_a_size_that_is_not_a_multiple_of_8_is_refused(model, width, height):
    with pytest.raises(BackendError, match="multiple of 8") as caught:
        backend.generate(model, [], [request(width=width, height=height)])
    assert caught.value.retryable is False


def test_an_unknown_scheduler_is_refused(model):
    with pytest.raises(BackendError, match="unknown scheduler 'NoSuchScheduler'"):
        backend.generate(model, [], [request(scheduler="NoSuchScheduler")])


def test_a_missing_lora_file_is_refused(model, tmp_path):
    spec = LoraSpec(name="gone:1", path=str(tmp_path / "gone.safetensors"), weight=1.0)

    with pytest.raises(BackendError, match="gone:1.*not found"):
        backend.generate(model, [spec], [request()])


def test_sha256_path_of_a_folder_is_stable_and_sees_every_change(tiny_model, tmp_path):
    original = sha256_path(tiny_model["model"])
    copy = tmp_path / "model"
    shutil.copytree(tiny_model["model"], copy)

    assert sha256_path(tiny_model["model"]) == original
    assert sha256_path(copy) == original  # independent of where the folder lives
    (copy / ".cache").mkdir()
    (copy / ".cache" / "huggingface.lock").write_text("x")
    assert sha256_path(copy) == original  # download caches and locks are not content

    (copy / "unet" / "config.json").rename(copy / "unet" / "config2.json")
    assert sha256_path(copy) != original
    (copy / "unet" / "config2.json").rename(copy / "unet" / "config.json")
    assert sha256_path(copy) == original
    with (copy / "unet" / "config.json").open("a") as fh:
        fh.write(" ")
    assert sha256_path(copy) != original


def test_building_the_tiny_model_twice_gives_the_same_bytes(tiny_model, tmp_path):
    from generation.tiny import build_tiny_model

    again = build_tiny_model(tmp_path)

    assert sha256_path(again["model"]) == sha256_path(tiny_model["model"])
    for name, path in again["loras"].items():
        assert sha256_path(path) == sha256_path(tiny_model["loras"][name])


def test_the_tiny_tokenizer_encodes_like_open_clip(tiny_model):
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    ours = CLIPTokenizer.from_pretrained(Path(tiny_model["model"]) / "tokenizer")
    reference = SimpleTokenizer()
    text = "Red SNEAKERS, on a white background!! 4k"

    expected = [reference.sot_token_id, *reference.encode(text), reference.eot_token_id]
    assert ours(text).input_ids == expected
    assert ours.model_max_length == 77


# --- SDXL (and the turbo models, which share its pipeline) ------------------------------------


@pytest.fixture(scope="module")
def sdxl(tiny_sdxl) -> ModelSpec:
    return ModelSpec(
        key="tiny-xl-test:1", source=tiny_sdxl["model"], sha256=sha256_path(tiny_sdxl["model"])
    )


def test_an_sdxl_model_batches_with_each_image_equal_to_it_made_alone(sdxl):
    reqs = [request(seed=41, prompt="a red sneaker"), request(seed=42, prompt="a castle")]

    batched = backend.generate(sdxl, [], reqs, batch_invariant=True)

    assert [r.image.size for r in batched] == [(64, 64), (64, 64)]
    assert backend.cache_info()["pipeline_classes"]["tiny-xl-test:1"] == "StableDiffusionXLPipeline"
    assert pixels(batched[0]).std() > 10
    for result, req in zip(batched, reqs, strict=True):
        assert np.array_equal(pixels(result), one(sdxl, [], req, invariant=True))


def test_an_sdxl_lora_changes_the_image_by_its_weight(sdxl, tiny_sdxl):
    path = tiny_sdxl["loras"]["tiny-xl-style"]

    def styled(weight):
        spec = LoraSpec(name="tiny-xl-style:1", path=path, weight=weight, sha256=sha256_path(path))
        return one(sdxl, [spec], request(seed=43))

    plain = one(sdxl, [], request(seed=43))
    assert np.abs(styled(1.0) - plain).mean() > 1
    assert np.abs(styled(0.3) - styled(1.0)).mean() > 1


def test_a_turbo_style_request_runs_one_step_without_guidance(sdxl):
    turbo = request(seed=44, steps=1, guidance_scale=0.0, negative_prompt="")

    (result,) = backend.generate(sdxl, [], [turbo])

    assert result.image.size == (64, 64)
    assert np.array_equal(pixels(result), one(sdxl, [], turbo))
