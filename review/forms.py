from __future__ import annotations

from django import forms

from review.models import Verdict

REJECT_REASONS = [
    ("", "Choose a reason…"),
    ("blurry", "Blurry"),
    ("wrong product", "Wrong product"),
    ("artefacts", "Artefacts"),
    ("off-brand", "Off-brand"),
    ("text or watermark", "Text or watermark"),
    ("other", "Other (say what)"),
]


class QueueFilterForm(forms.Form):
    """``?campaign=<uuid>``; an unknown or malformed id filters to nothing rather than to all."""

    campaign = forms.UUIDField(required=False)

    def campaign_id(self):
        return self.cleaned_data["campaign"] if self.is_valid() else _NO_CAMPAIGN


# A well-formed id no campaign has: a malformed filter shows an empty queue, not every campaign.
_NO_CAMPAIGN = "00000000-0000-0000-0000-000000000000"


class DecisionForm(forms.Form):
    token = forms.UUIDField(widget=forms.HiddenInput)
    campaign = forms.UUIDField(widget=forms.HiddenInput, required=False)
    decision = forms.ChoiceField(
        choices=[(Verdict.APPROVED, "Approve"), (Verdict.REJECTED, "Reject")]
    )
    reason_code = forms.ChoiceField(choices=REJECT_REASONS, required=False, label="Reject reason")
    reason_text = forms.CharField(
        required=False, max_length=1000, label="Details", widget=forms.TextInput
    )

    def clean(self) -> dict:
        data = super().clean()
        code, text = data.get("reason_code", ""), (data.get("reason_text") or "").strip()
        if data.get("decision") == Verdict.REJECTED:
            if not code and not text:
                raise forms.ValidationError("Say why the image is rejected: pick a reason.")
            if code == "other" and not text:
                self.add_error("reason_text", "Describe the problem when the reason is “other”.")
        return data

    @property
    def reason(self) -> str:
        """Like "blurry: soft edges"; an approval keeps only the typed note, not a reason."""
        code = self.cleaned_data.get("reason_code", "")
        text = (self.cleaned_data.get("reason_text") or "").strip()
        if code == "other" or self.cleaned_data.get("decision") != Verdict.REJECTED:
            code = ""
        return ": ".join(part for part in (code, text) if part)
