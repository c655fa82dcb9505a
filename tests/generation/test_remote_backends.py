"""The AUTOMATIC1111 and Stability AI clients against a local server that follows their
documented contracts (no network: the server runs on 127.0.0.1 inside the test)."""

from __future__ import annotations

import base64
import json
import time
from email.parser import BytesParser
from email.policy import HTTP

import pytest

from generation.backends import (
    BackendError,
    ImageRequest,
    LoraSpec,
    ModelSpec,
    automatic1111,
    stability,
)
from generation.backends.http import retry_after_seconds
from tests.generation.conftest import png_bytes

SHA = "a" * 64
CHECKPOINTS = [
    {
        "title": "dreamshaper_8.safetensors [aaaaaaaaaa]",
        "model_name": "dreamshaper_8",
        "hash": SHA[:10],
        "sha256": SHA,
        "filename": "/models/Stable-diffusion/dreamshaper_8.safetensors",
        "config": None,
    },
    {
        "title": "other.ckpt",
        "model_name": "other",
        "hash": None,
        "sha256": None,
        "filename": "/models/Stable-diffusion/other.ckpt",
        "config": None,
    },
]
A1111_MODEL = ModelSpec(key="dreamshaper:1", source="dreamshaper_8", sha256=SHA)


def req(seed: int, prompt: str = "a red sneaker", **overrides) -> ImageRequest:
    params = dict(
        prompt=prompt,
        negative_prompt="blurry",
        seed=seed,
        width=64,
        height=64,
        steps=20,
        guidance_scale=7.0,
    )
    return ImageRequest(**{**params, **overrides})


def txt2img_answer(seeds: list[int], model_hash: str = SHA[:10]) -> dict:
    image = base64.b64encode(png_bytes()).decode()
    info = {
        "seed": seeds[0],
        "all_seeds": seeds,
        "sd_model_hash": model_hash,
        "sd_model_name": "dreamshaper_8",
    }
    return {"images": [image] * len(seeds), "parameters": {}, "info": json.dumps(info)}


@pytest.fixture
def a1111(provider):
    provider.answer("/sdapi/v1/sd-models", json=CHECKPOINTS)
    return provider


# --- AUTOMATIC1111 ---------------------------------------------------------------------------


def test_a1111_makes_consecutive_seeds_of_one_prompt_in_one_call_with_model_and_loras(
    a1111, tmp_path
):
    a1111.answer("/sdapi/v1/txt2img", json=txt2img_answer([100, 101]))
    lora = LoraSpec(name="ink:2", path=str(tmp_path / "ink-style.safetensors"), weight=0.7)

    results = automatic1111.generate(A1111_MODEL, [lora], [req(100), req(101)])

    (call,) = a1111.posts("/sdapi/v1/txt2img")
    payload = json.loads(call[3])
    assert payload["override_settings"] == {
        "sd_model_checkpoint": "dreamshaper_8.safetensors [aaaaaaaaaa]"
    }
    assert payload["prompt"] == "a red sneaker <lora:ink-style:0.7>"
    assert (payload["seed"], payload["batch_size"], payload["cfg_scale"]) == (100, 2, 7.0)
    assert [r.seed for r in results] == [100, 101]
    assert [r.batch_size for r in results] == [2, 2]
    assert results[0].image.size == (64, 64)
    assert results[0].extra["sd_model_hash"] == SHA[:10]
    # The checkpoint was looked up before generating.
    assert [c[1] for c in a1111.calls] == ["/sdapi/v1/sd-models", "/sdapi/v1/txt2img"]


def test_a1111_calls_once_per_seed_when_seeds_are_not_consecutive(a1111):
    a1111.answer("/sdapi/v1/txt2img", json=txt2img_answer([5]))
    a1111.answer("/sdapi/v1/txt2img", json=txt2img_answer([9]))

    results = automatic1111.generate(A1111_MODEL, [], [req(5), req(9)])

    assert [json.loads(c[3])["batch_size"] for c in a1111.posts("/sdapi/v1/txt2img")] == [1, 1]
    assert [r.seed for r in results] == [5, 9]


def test_a1111_sends_basic_auth_when_a_user_is_configured(a1111, settings):
    settings.STUDIO_A1111_USER, settings.STUDIO_A1111_PASSWORD = "studio", "s3cret"
    a1111.answer("/sdapi/v1/txt2img", json=txt2img_answer([1]))

    automatic1111.generate(A1111_MODEL, [], [req(1)])

    expected = "Basic " + base64.b64encode(b"studio:s3cret").decode()
    assert all(call[2]["Authorization"] == expected for call in a1111.calls)


def test_a1111_refuses_a_checkpoint_the_server_does_not_have(a1111):
    model = ModelSpec(key="x:1", source="missing_model", sha256="")

    with pytest.raises(BackendError, match="no checkpoint 'missing_model'.*dreamshaper") as caught:
        automatic1111.generate(model, [], [req(1)])
    assert caught.value.retryable is False
    assert not a1111.posts("/sdapi/v1/txt2img")


def test_a1111_refuses_a_server_checkpoint_whose_hash_is_not_the_pinned_one(a1111):
    model = ModelSpec(key="x:1", source="dreamshaper_8", sha256="b" * 64)

    with pytest.raises(BackendError, match="not the pinned bbbbbbbbbb") as caught:
        automatic1111.generate(model, [], [req(1)])
    assert caught.value.retryable is False


def test_a1111_refuses_a_result_made_by_another_model(a1111):
    a1111.answer("/sdapi/v1/txt2img", json=txt2img_answer([1], model_hash="0123456789"))

    with pytest.raises(BackendError, match="model hash 0123456789.*refused") as caught:
        automatic1111.generate(A1111_MODEL, [], [req(1)])
    assert caught.value.retryable is False


def test_a1111_retries_a_server_error_with_backoff_then_succeeds(a1111):
    a1111.answer("/sdapi/v1/txt2img", status=500, json={"error": "CUDA error"})
    a1111.answer("/sdapi/v1/txt2img", status=503, body=b"busy")
    a1111.answer("/sdapi/v1/txt2img", json=txt2img_answer([1]))

    (result,) = automatic1111.generate(A1111_MODEL, [], [req(1)])

    assert result.seed == 1
    assert len(a1111.posts("/sdapi/v1/txt2img")) == 3


def test_a1111_gives_up_after_the_retry_limit_with_a_retryable_error(a1111, settings):
    settings.STUDIO_HTTP_RETRIES = 1
    a1111.answer("/sdapi/v1/txt2img", status=502, body=b"bad gateway")

    with pytest.raises(BackendError, match="HTTP 502: bad gateway") as caught:
        automatic1111.generate(A1111_MODEL, [], [req(1)])
    assert caught.value.retryable is True
    assert len(a1111.posts("/sdapi/v1/txt2img")) == 2


def test_a1111_honours_retry_after_on_429(a1111):
    a1111.answer("/sdapi/v1/txt2img", status=429, headers={"Retry-After": "1"}, body=b"slow down")
    a1111.answer("/sdapi/v1/txt2img", json=txt2img_answer([1]))

    started = time.monotonic()
    automatic1111.generate(A1111_MODEL, [], [req(1)])

    # The backoff alone would wait 0.01 s.
    assert time.monotonic() - started >= 1.0
    assert len(a1111.posts("/sdapi/v1/txt2img")) == 2


def test_a1111_fails_a_validation_error_at_once_with_the_servers_message(a1111):
    detail = {"detail": [{"loc": ["body", "steps"], "msg": "value is not a valid integer"}]}
    a1111.answer("/sdapi/v1/txt2img", status=422, json=detail)

    with pytest.raises(BackendError, match="HTTP 422: value is not a valid integer") as caught:
        automatic1111.generate(A1111_MODEL, [], [req(1)])
    assert caught.value.retryable is False
    assert caught.value.status == 422
    assert len(a1111.posts("/sdapi/v1/txt2img")) == 1


def test_a1111_treats_a_body_that_is_not_json_as_retryable(a1111):
    a1111.answer("/sdapi/v1/txt2img", body=b"<html>502 proxy error</html>")

    with pytest.raises(BackendError, match="not JSON") as caught:
        automatic1111.generate(A1111_MODEL, [], [req(1)])
    assert caught.value.retryable is True


def test_a1111_times_out_as_a_retryable_error(a1111, settings):
    settings.STUDIO_HTTP_TIMEOUT_SECONDS = 0.2
    settings.STUDIO_HTTP_RETRIES = 0
    a1111.answer("/sdapi/v1/txt2img", json=txt2img_answer([1]), delay=1.0)

    with pytest.raises(BackendError, match="timed out") as caught:
        automatic1111.generate(A1111_MODEL, [], [req(1)])
    assert caught.value.retryable is True


def test_a1111_that_cannot_be_reached_is_a_retryable_error(provider, settings):
    provider.close()  # nothing listens on the port any more
    settings.STUDIO_HTTP_RETRIES = 1

    with pytest.raises(BackendError, match="cannot connect") as caught:
        automatic1111.generate(A1111_MODEL, [], [req(1)])
    assert caught.value.retryable is True


def test_a1111_without_a_configured_url_is_a_permanent_error(settings):
    settings.STUDIO_A1111_URL = ""

    with pytest.raises(BackendError, match="STUDIO_A1111_URL is not set") as caught:
        automatic1111.generate(A1111_MODEL, [], [req(1)])
    assert caught.value.retryable is False


# --- Stability AI ----------------------------------------------------------------------------


def form_fields(body: bytes, headers: dict) -> dict[str, str]:
    raw = f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body
    message = BytesParser(policy=HTTP).parsebytes(raw)
    return {
        part.get_param("name", header="content-disposition"): part.get_content()
        for part in message.iter_parts()
    }


CORE = ModelSpec(key="core:1", source="core")


def test_stability_posts_a_multipart_form_and_reads_seed_and_finish_reason(provider):
    path = "/v2beta/stable-image/generate/core"
    provider.answer(
        path,
        body=png_bytes(size=(48, 80)),
        headers={"Content-Type": "image/png", "seed": "77", "finish-reason": "SUCCESS"},
    )

    (result,) = stability.generate(CORE, [], [req(77, width=576, height=1024)])

    (call,) = provider.posts(path)
    fields = form_fields(call[3], call[2])
    assert fields == {
        "prompt": "a red sneaker",
        "aspect_ratio": "9:16",
        "seed": "77",
        "output_format": "png",
        "negative_prompt": "blurry",
    }
    assert call[2]["Authorization"] == "Bearer sk-test-key"
    assert call[2]["Accept"] == "image/*"
    assert (result.seed, result.image.size, result.credits) == (77, (48, 80), 3.0)
    assert result.extra["finish_reason"] == "SUCCESS"


def test_stability_sends_an_sd3_model_name_to_the_sd3_endpoint(provider):
    path = "/v2beta/stable-image/generate/sd3"
    provider.answer(path, body=png_bytes(), headers={"seed": "1", "finish-reason": "SUCCESS"})

    (result,) = stability.generate(ModelSpec(key="sd35:1", source="sd3.5-large"), [], [req(1)])

    (call,) = provider.posts(path)
    assert form_fields(call[3], call[2])["model"] == "sd3.5-large"
    assert result.credits == 6.5


def test_stability_content_filtered_is_a_failed_image_with_that_reason(provider):
    path = "/v2beta/stable-image/generate/core"
    provider.answer(
        path, body=png_bytes(), headers={"seed": "3", "finish-reason": "CONTENT_FILTERED"}
    )

    (result,) = stability.generate(CORE, [], [req(3)])

    assert result.image is None
    assert result.error.startswith("CONTENT_FILTERED")
    assert result.credits == 3.0


@pytest.mark.parametrize("status", [400, 403, 413, 422])
def test_stability_permanent_errors_fail_at_once_with_the_providers_message(provider, status):
    path = "/v2beta/stable-image/generate/core"
    provider.answer(
        path,
        status=status,
        json={"id": "e1", "name": "bad_request", "errors": ["prompt: cannot be blank"]},
    )

    with pytest.raises(BackendError, match=f"HTTP {status}: prompt: cannot be blank") as caught:
        stability.generate(CORE, [], [req(1)])
    assert caught.value.retryable is False
    assert len(provider.posts(path)) == 1


def test_stability_retries_a_rate_limit_after_the_time_it_asks_for(provider):
    path = "/v2beta/stable-image/generate/core"
    provider.answer(
        path,
        status=429,
        headers={"Retry-After": "1"},
        json={"name": "rate_limit_exceeded", "errors": ["too many requests"]},
    )
    provider.answer(path, body=png_bytes(), headers={"seed": "1", "finish-reason": "SUCCESS"})

    started = time.monotonic()
    (result,) = stability.generate(CORE, [], [req(1)])

    assert time.monotonic() - started >= 1.0
    assert result.image is not None


def test_stability_reads_the_key_from_the_environment_and_refuses_to_run_without(settings):
    settings.STABILITY_API_KEY = ""

    with pytest.raises(BackendError, match="STABILITY_API_KEY") as caught:
        stability.generate(CORE, [], [req(1)])
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("size", "ratio"),
    [((1024, 1024), "1:1"), ((1080, 1920), "9:16"), ((1200, 627), "16:9"), ((832, 1216), "2:3")],
)
def test_stability_uses_the_nearest_aspect_ratio(size, ratio):
    assert stability.aspect_ratio(*size) == ratio


def test_retry_after_reads_seconds_and_http_dates():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    assert retry_after_seconds("7") == 7
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 31
    assert retry_after_seconds("soon") is None
