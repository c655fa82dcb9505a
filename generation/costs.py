"""What things cost: the charges of one generated image, estimates from the configured rates,
and money as people read it.

Prices come from settings (checked at start-up, see studio/settings.py); amounts are exact
``Decimal`` in settings.STUDIO_CURRENCY, kept to the ledger's ten places and rounded only by
``money`` when shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from generation.models import Backend, CostEntry

PLACES = Decimal("0.0000000001")  # the ledger's precision (CostEntry.amount)
RATE_PLACES = Decimal("0.00000000000001")  # CostEntry.rate
SECONDS_PER_HOUR = Decimal(3600)
REFERENCE_PIXELS = 512 * 512  # STUDIO_ESTIMATE_SECONDS_PER_STEP is measured at this size
SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€", "JPY": "¥", "INR": "₹"}


@dataclass(frozen=True)
class Charge:
    """One ledger line before it is attributed: ``quantity`` ``unit`` × ``rate`` = ``amount``.

    ``name`` tells charges of one source apart (the generation itself, a model's own fee);
    ``setting`` is where the rate came from."""

    kind: str
    name: str
    quantity: Decimal
    unit: str
    rate: Decimal
    amount: Decimal
    setting: str
    detail: dict = field(default_factory=dict)


def exact(value: Decimal) -> Decimal:
    return Decimal(value).quantize(PLACES, rounding=ROUND_HALF_UP)


def host_class(device: str) -> str:
    """ "gpu" or "cpu", from the device a local backend reports ("cpu", "cuda:0 NVIDIA…")."""
    return "cpu" if not device or device.strip().lower().startswith("cpu") else "gpu"


def hourly_rate(host: str) -> tuple[Decimal, str]:
    if host == "cpu":
        return settings.STUDIO_CPU_HOURLY_RATE, "STUDIO_CPU_HOURLY_RATE"
    return settings.STUDIO_GPU_HOURLY_RATE, "STUDIO_GPU_HOURLY_RATE"


def seconds_charge(
    *, kind: str, name: str, seconds: float, unit: str, hourly: Decimal, setting: str, detail: dict
) -> Charge:
    """Time × an hourly rate; the rate per second is kept to 14 places, the amount is the
    exact product of seconds and the hourly rate."""
    quantity = Decimal(str(round(seconds, 6)))
    return Charge(
        kind=kind,
        name=name,
        quantity=quantity,
        unit=unit,
        rate=(hourly / SECONDS_PER_HOUR).quantize(RATE_PLACES, rounding=ROUND_HALF_UP),
        amount=exact(quantity * hourly / SECONDS_PER_HOUR),
        setting=setting,
        detail=detail,
    )


def image_charges(*, item, result) -> list[Charge]:
    """What one generated image cost: compute (seconds on the worker × the rate of its host
    class) for the local backend, API charges (credits × STUDIO_STABILITY_CREDIT_PRICE,
    STUDIO_A1111_IMAGE_RATE per image) for the remote ones, plus the base model's own
    per-image fee if it has one."""
    backend = item.base_model.backend
    if backend == Backend.STABILITY:
        credits = Decimal(str(result.credits or 0))
        price = settings.STUDIO_STABILITY_CREDIT_PRICE
        charges = [
            Charge(
                kind=CostEntry.Kind.API,
                name="generation",
                quantity=credits,
                unit="credit",
                rate=price,
                amount=exact(credits * price),
                setting="STUDIO_STABILITY_CREDIT_PRICE",
                detail={"basis": "credits", "credits": float(credits), "credit_price": str(price)},
            )
        ]
    elif backend == Backend.AUTOMATIC1111:
        rate = settings.STUDIO_A1111_IMAGE_RATE
        charges = [
            Charge(
                kind=CostEntry.Kind.API,
                name="generation",
                quantity=Decimal(1),
                unit="image",
                rate=rate,
                amount=exact(rate),
                setting="STUDIO_A1111_IMAGE_RATE",
                detail={"basis": "per_image", "image_rate": str(rate)},
            )
        ]
    else:
        host = host_class(result.device)
        hourly, setting = hourly_rate(host)
        charges = [
            seconds_charge(
                kind=CostEntry.Kind.COMPUTE,
                name="generation",
                seconds=result.duration_s,
                unit=f"{host}_second",
                hourly=hourly,
                setting=setting,
                detail={
                    "basis": f"{host}_seconds",
                    "seconds": round(result.duration_s, 4),
                    "hourly_rate": str(hourly),
                    "device": result.device,
                },
            )
        ]
    fee = item.base_model.cost_per_image
    if fee:
        charges.append(
            Charge(
                kind=CostEntry.Kind.API,
                name="model_fee",
                quantity=Decimal(1),
                unit="image",
                rate=fee,
                amount=exact(fee),
                setting=f"BaseModelVersion.cost_per_image ({item.base_model})",
                detail={"basis": "model_fee", "model_fee": str(fee)},
            )
        )
    return charges


def charges_detail(charges: list[Charge]) -> dict:
    """How an image's generation cost was computed, for Item.cost_detail."""
    detail = dict(charges[0].detail) if charges else {}
    for charge in charges[1:]:
        if charge.name == "model_fee":
            detail["model_fee"] = charge.detail["model_fee"]
    return detail


def image_cost(*, item, result) -> tuple[Decimal, dict]:
    """The total of ``image_charges`` and how it was computed."""
    charges = image_charges(item=item, result=result)
    return exact(sum((c.amount for c in charges), Decimal(0))), charges_detail(charges)


def configured_seconds(*, steps: int, width: int, height: int) -> float:
    """Seconds one image takes, without history: STUDIO_ESTIMATE_SECONDS_PER_STEP per step at
    512×512, in proportion to the pixels."""
    pixels = max(1, width * height)
    return settings.STUDIO_ESTIMATE_SECONDS_PER_STEP * steps * pixels / REFERENCE_PIXELS


def configured_image_cost(*, base_model, steps: int, width: int, height: int) -> Decimal:
    """What one image should cost from the configured rates alone (no history): a GPU
    second's rate × configured_seconds for the local backend, the per-image or credit price
    for the remote ones, plus the model's own fee."""
    if base_model.backend == Backend.STABILITY:
        from generation.backends.stability import CREDITS

        credits = Decimal(str(CREDITS.get(base_model.source.strip().lower(), 0)))
        cost = credits * settings.STUDIO_STABILITY_CREDIT_PRICE
    elif base_model.backend == Backend.AUTOMATIC1111:
        cost = settings.STUDIO_A1111_IMAGE_RATE
    else:
        seconds = Decimal(str(configured_seconds(steps=steps, width=width, height=height)))
        cost = seconds * settings.STUDIO_GPU_HOURLY_RATE / SECONDS_PER_HOUR
    return exact(cost + (base_model.cost_per_image or 0))


def currency_symbol(code: str | None = None) -> str:
    code = code or settings.STUDIO_CURRENCY
    return SYMBOLS.get(code, f"{code} ")


def money(amount, places: int = 2, *, currency: str | None = None) -> str:
    """An amount for people: rounded (half up) to ``places``, with the currency's symbol and
    thousands separators: ``£1,234.50``, ``-£0.0125``. The only place money is rounded."""
    if amount is None or amount == "":
        return "—"
    value = Decimal(str(amount)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    return f"{sign}{currency_symbol(currency)}{abs(value):,.{places}f}"
