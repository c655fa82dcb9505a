from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings

from generation.models import Campaign
from generation.services import month_parse
from studio.errors import InputError


class ReportFilterForm(forms.Form):
    """The filters every report takes from its URL: all optional; bad values are errors on
    the page, naming the field."""

    month = forms.CharField(required=False, max_length=7, help_text="YYYY-MM")
    campaign = forms.UUIDField(required=False)
    bar = forms.IntegerField(
        required=False, min_value=1, max_value=100, label="Acceptance bar (%)", initial=70
    )
    min_images = forms.IntegerField(
        required=False, min_value=1, max_value=1_000_000, label="Fewest judged images"
    )

    def clean_month(self):
        value = self.cleaned_data.get("month") or ""
        if not value.strip():
            return None
        try:
            return month_parse(value)
        except InputError as error:
            raise forms.ValidationError(error.messages()[0]) from None

    def clean_campaign(self):
        pk = self.cleaned_data.get("campaign")
        if pk and not Campaign.objects.filter(pk=pk).exists():
            raise forms.ValidationError("No campaign with this id.")
        return pk


class CampaignValueForm(forms.Form):
    value_per_image = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        label="Value of an approved image",
        help_text="What the business gains per approved image, or what the alternative costs.",
    )
    note = forms.CharField(required=False, max_length=200)

    def clean_value_per_image(self):
        value = self.cleaned_data["value_per_image"]
        if value > settings.STUDIO_BUDGET_MAX:
            raise forms.ValidationError(f"At most {settings.STUDIO_BUDGET_MAX}.")
        return value
