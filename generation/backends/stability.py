"""Stability AI's hosted API: ``POST /v2beta/stable-image/generate/{core,ultra,sd3}``.

A multipart form (``prompt``, ``negative_prompt``, ``aspect_ratio``, ``seed``,
``output_format``, and ``model`` for sd3), a Bearer key from STABILITY_API_KEY(_FILE) — never
the database — and ``Accept: image/*``: the body is the image, the ``seed`` and
``finish-reason`` headers describe it. ``CONTENT_FILTERED`` is a failed image with that
reason, not an error of the batch. One image per call; credits per image are recorded.

``BaseModelVersion.source`` names the service: ``core``, ``ultra``, ``sd3`` or an sd3 model
such as ``sd3.5-large``.
"""

from __future__ import annotations

import io
import math
import time
from urllib.parse import urlsplit

from generation.backends import (
    BackendError,
    GeneratedImage,
    ImageRequest,
    LoraSpec,
    ModelSpec,
    http,
)

WHAT = "Stability AI"

ASPECT_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
# Credits per image (Stability's published prices); 1 credit = STUDIO_STABILITY_CREDIT_PRICE.
CREDITS = {
    "core": 3.0,
    "ultra": 8.0,
    "sd3.5-large": 6.5,
    "sd3.5-large-turbo": 4.0,
    "sd3.5-medium": 3.5,
    "sd3.5-flash": 2.5,
}
MAX_SEED = 4294967294


def aspect_ratio(width: int, height: int) -> str:
    """The supported aspect ratio nearest to width:height (by log ratio)."""

    def distance(ratio: str) -> float:
        w, h = (int(x) for x in ratio.split(":"))
        return abs(math.log(w / h) - math.log(width / height))

    return min(ASPECT_RATIOS, key=distance)


def endpoint(source: str) -> tuple[str, dict[str, str]]:
    """The path and extra form fields for a model source."""
    source = source.strip().lower()
    if source in ("core", "ultra"):
        return f"/v2beta/stable-image/generate/{source}", {}
    if source == "sd3":
        return "/v2beta/stable-image/generate/sd3", {}
    if source.startswith("sd3"):
        return "/v2beta/stable-image/generate/sd3", {"model": source}
    raise BackendError(
        f"{WHAT}: model source {source!r} is not core, ultra, sd3 or an sd3 model (sd3.5-large)"
    )


def _config() -> tuple[str, str]:
    from django.conf import settings

    key = getattr(settings, "STABILITY_API_KEY", "")
    if not key:
        raise BackendError(f"{WHAT}: STABILITY_API_KEY (or STABILITY_API_KEY_FILE) is not set")
    url = getattr(settings, "STUDIO_STABILITY_URL", "https://api.stability.ai").rstrip("/")
    return url, key


def generate(
    model: ModelSpec, loras: list[LoraSpec], requests: list[ImageRequest]
) -> list[GeneratedImage]:
    from PIL import Image

    if loras:
        raise BackendError(f"{WHAT}: the hosted API cannot apply LoRAs; use a recipe without")
    url, key = _config()
    path, extra_fields = endpoint(model.source)
    credits = CREDITS.get(extra_fields.get("model", model.source.strip().lower()))
    host = urlsplit(url).netloc
    results = []
    for request in requests:
        if not 0 <= request.seed <= MAX_SEED:
            raise BackendError(f"{WHAT}: seed must be in [0, {MAX_SEED}], got {request.seed}")
        fields = {
            "prompt": request.prompt,
            "aspect_ratio": aspect_ratio(request.width, request.height),
            "seed": str(request.seed),
            "output_format": "png",
            **extra_fields,
        }
        if request.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        body, content_type = http.multipart(fields)
        started = time.perf_counter()
        response = http.request(
            "POST",
            url + path,
            what=WHAT,
            body=body,
            headers={
                "Authorization": f"Bearer {key}",
                "Accept": "image/*",
                "Content-Type": content_type,
                "stability-client-id": "studio",
            },
        )
        duration = time.perf_counter() - started
        reason = (response.headers.get("finish-reason") or "SUCCESS").strip().upper()
        seed = int(response.headers.get("seed") or request.seed)
        facts = {
            "finish_reason": reason,
            "aspect_ratio": fields["aspect_ratio"],
            "endpoint": path,
        }
        if reason == "CONTENT_FILTERED":
            results.append(
                GeneratedImage(
                    image=None,
                    seed=seed,
                    duration_s=duration,
                    device=f"stability {host}",
                    error="CONTENT_FILTERED: Stability AI's content filter blocked this image",
                    credits=credits,
                    extra=facts,
                )
            )
            continue
        if reason != "SUCCESS":
            raise BackendError(f"{WHAT}: finish-reason {reason}", retryable=True)
        try:
            image = Image.open(io.BytesIO(response.body), formats=["PNG", "JPEG", "WEBP"])
            image.load()
        except Exception as exc:
            raise BackendError(
                f"{WHAT}: the image cannot be decoded ({exc})", retryable=True
            ) from exc
        results.append(
            GeneratedImage(
                image=image.convert("RGB"),
                seed=seed,
                duration_s=duration,
                device=f"stability {host}",
                credits=credits,
                extra=facts,
            )
        )
    return results
