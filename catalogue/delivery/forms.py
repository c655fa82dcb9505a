"""The delivery settings form of a campaign; catalogue.delivery.renditions.delivery_update
checks every value again and names the field of each problem."""

from __future__ import annotations

from django import forms

from catalogue.delivery.renditions import (
    DEFAULT_FORMATS,
    FORMATS,
    avif_available,
    channel_name,
    default_format,
)
from catalogue.models import Delivery
from generation.sizes import CHANNELS
from studio.errors import InputError

CHANNEL_CHOICES = [(name, f"{name} ({w}×{h})") for name, (w, h) in CHANNELS.items()]


def _format_choices(channel: str) -> list[tuple[str, str]]:
    formats = [f for f in FORMATS if f != "avif" or avif_available()]
    return [("", f"default ({default_format(channel)})"), *((f, f.upper()) for f in formats)]


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").replace("\n", ",").split(",") if part.strip()]


# The settings the form takes as they are (channels, formats and the logo need work).
PLAIN_FIELDS = (
    "quality",
    "max_upscale",
    "refuse_upscaled",
    "watermark",
    "watermark_text",
    "watermark_position",
    "watermark_margin",
    "watermark_opacity",
    "watermark_scale",
)


class DeliveryForm(forms.Form):
    channels = forms.MultipleChoiceField(
        choices=CHANNEL_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked and no custom size: the campaign's own channels.",
    )
    custom_sizes = forms.CharField(
        required=False, help_text="Custom sizes as WIDTHxHEIGHT, comma-separated (1600x900)."
    )
    custom_format = forms.ChoiceField(
        required=False, choices=_format_choices("custom"), label="Format of custom sizes"
    )
    quality = forms.IntegerField(min_value=1, max_value=100, help_text="JPEG/WebP/AVIF, 1-100.")
    max_upscale = forms.FloatField(
        min_value=1, max_value=64, label="Upscale limit", help_text="e.g. 2 for ×2."
    )
    refuse_upscaled = forms.BooleanField(
        required=False, label="Refuse a channel that needs more than the limit"
    )
    watermark = forms.ChoiceField(choices=Delivery.Watermark.choices)
    watermark_text = forms.CharField(required=False, max_length=200, label="Watermark text")
    watermark_logo = forms.FileField(
        required=False, label="Watermark logo", help_text="PNG, JPEG or WebP, at most 5 MB."
    )
    watermark_position = forms.ChoiceField(choices=Delivery.Position.choices, label="Position")
    watermark_margin = forms.FloatField(
        min_value=0, max_value=0.4, label="Margin", help_text="Fraction of the short side."
    )
    watermark_opacity = forms.FloatField(
        min_value=0, max_value=1, label="Opacity", help_text="0-1."
    )
    watermark_scale = forms.FloatField(
        min_value=0.01,
        max_value=1,
        label="Scale",
        help_text="The mark's width as a fraction of the rendition's width.",
    )
    watermark_channels = forms.CharField(
        required=False,
        label="Watermarked channels",
        help_text="Comma-separated; empty: every channel.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for channel in CHANNELS:
            self.fields[f"format_{channel}"] = forms.ChoiceField(
                required=False, choices=_format_choices(channel), label=f"Format of {channel}"
            )

    @classmethod
    def initial_for(cls, delivery: Delivery) -> dict:
        standard = [c for c in delivery.channels if c in CHANNELS]
        custom = [c for c in delivery.channels if c not in CHANNELS]
        formats = delivery.formats or {}
        initial = {
            "channels": standard,
            "custom_sizes": ", ".join(custom),
            "custom_format": next((formats[c] for c in custom if c in formats), ""),
            "watermark_channels": ", ".join(delivery.watermark_channels),
        }
        for name in PLAIN_FIELDS:
            initial[name] = getattr(delivery, name)
        for channel in CHANNELS:
            initial[f"format_{channel}"] = formats.get(channel, "")
        return initial

    def format_fields(self) -> list:
        return [self[f"format_{channel}"] for channel in CHANNELS]

    def clean_custom_sizes(self) -> list[str]:
        sizes = []
        for written in _split(self.cleaned_data.get("custom_sizes", "")):
            try:
                sizes.append(channel_name(written))
            except InputError as exc:
                raise forms.ValidationError(exc.errors[0].message) from None
        return sizes

    def delivery_kwargs(self) -> dict:
        """The values for delivery_update."""
        data = self.cleaned_data
        channels = list(dict.fromkeys([*data["channels"], *data["custom_sizes"]]))
        formats = {c: data[f"format_{c}"] for c in DEFAULT_FORMATS if data.get(f"format_{c}")}
        if data.get("custom_format"):
            formats |= {size: data["custom_format"] for size in data["custom_sizes"]}
        values = {
            "channels": channels,
            "formats": formats,
            "watermark_channels": _split(data.get("watermark_channels", "")),
        }
        for name in PLAIN_FIELDS:
            values[name] = data[name]
        if data.get("watermark_logo"):
            values["watermark_logo"] = data["watermark_logo"]
        return values

    def add_input_errors(self, error: InputError) -> None:
        """A service's InputError, on the fields it names."""
        for problem in error.errors:
            field = problem.field
            if field == "formats":
                field = None
            self.add_error(field if field in self.fields else None, problem.message)
