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
