from __future__ import annotations

from django import forms

from catalogue.models import Asset
from generation.models import Campaign


class AssetSearchForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=500,
        label="Search",
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": 'e.g. red sneaker, "trail ranger", boot OR sandal, -leather',
                "autocomplete": "off",
            }
        ),
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(), required=False, empty_label="All campaigns"
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *Asset.Status.choices], required=False)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = (
            Campaign.objects.filter(assets__isnull=False).distinct().order_by("-created_at")
        )

    def search_kwargs(self) -> dict:
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "query": data["q"],
            "campaign_id": data["campaign"].pk if data["campaign"] else None,
            "status": data["status"] or None,
        }


class RightsForm(forms.Form):
    """Usage rights for one asset or a selection (catalogue.services.assets_rights_set)."""

    licence = forms.ChoiceField(choices=Asset.Rights.choices)
    custom = forms.CharField(required=False, max_length=2000, label="Custom licence")
    channels = forms.CharField(
        required=False,
        max_length=500,
        help_text="Comma-separated, e.g. web, print, instagram; empty: any channel.",
    )
    territories = forms.CharField(
        required=False,
        max_length=1000,
        help_text="ISO 3166-1 codes, comma-separated, e.g. GB, VN, ID; empty: anywhere.",
    )
    valid_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    valid_until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    notes = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    @staticmethod
    def initial_for(asset: Asset) -> dict:
        return {
            "licence": asset.rights,
            "custom": asset.rights_custom,
            "channels": ", ".join(asset.rights_channels),
            "territories": ", ".join(asset.rights_territories),
            "valid_from": asset.rights_from,
            "valid_until": asset.rights_until,
            "notes": asset.rights_notes,
        }

    def rights_kwargs(self) -> dict:
        data = self.cleaned_data

        def split(text: str) -> list[str]:
            return [part.strip() for part in (text or "").split(",") if part.strip()]

        return {
            "licence": data["licence"],
            "custom": data["custom"],
            "channels": split(data["channels"]),
            "territories": split(data["territories"]),
            "valid_from": data["valid_from"],
            "valid_until": data["valid_until"],
            "notes": data["notes"],
        }
