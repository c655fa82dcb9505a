"""What one generated image cost, and how it was computed."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from generation.models import Backend


def image_cost(*, item, result) -> tuple[Decimal, dict]:
    """GPU-seconds × STUDIO_GPU_HOURLY_RATE (diffusers), STUDIO_A1111_IMAGE_RATE per image
    (AUTOMATIC1111), credits × STUDIO_STABILITY_CREDIT_PRICE (Stability); plus the base
    model's own per-image fee, if any."""
    backend = item.base_model.backend
    if backend == Backend.STABILITY:
        credits = Decimal(str(result.credits or 0))
        price = settings.STUDIO_STABILITY_CREDIT_PRICE
        cost = credits * price
        detail = {"basis": "credits", "credits": float(credits), "credit_price": str(price)}
    elif backend == Backend.AUTOMATIC1111:
        cost = settings.STUDIO_A1111_IMAGE_RATE
        detail = {"basis": "per_image", "image_rate": str(cost)}
    else:
        rate = settings.STUDIO_GPU_HOURLY_RATE
        cost = Decimal(str(result.duration_s)) * rate / Decimal(3600)
        detail = {
            "basis": "gpu_seconds",
            "seconds": round(result.duration_s, 4),
            "hourly_rate": str(rate),
            "device": result.device,
        }
    fee = item.base_model.cost_per_image
    if fee:
        detail["model_fee"] = str(fee)
    return (cost + fee).quantize(Decimal("0.000001")), detail
