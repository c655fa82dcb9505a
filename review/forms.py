from __future__ import annotations

from django import forms

from review.quality import content
from review.quality.policy import check_thresholds
from review.vocabulary import ReasonCode, Verdict, reason_label
from studio.errors import InputError

# The shared vocabulary (the automatic scorers use the same codes).
REJECT_REASONS = [("", "Choose a reason…"), *ReasonCode.choices]


class QueueFilterForm(forms.Form):
    """``?campaign=<uuid>``; an unknown or malformed id filters to nothing rather than to all."""

    campaign = forms.UUIDField(required=False)

    # A well-formed id no campaign has: a malformed filter shows an empty queue, not all.
    NO_CAMPAIGN = "00000000-0000-0000-0000-000000000000"

    def campaign_id(self):
        return self.cleaned_data["campaign"] if self.is_valid() else self.NO_CAMPAIGN


class _RejectReason:
    """A rejection needs a reason code or text; "other" needs the text."""

    def clean(self) -> dict:
        data = super().clean()
        code, text = data.get("reason_code", ""), (data.get("reason_text") or "").strip()
        if data.get("decision") == Verdict.REJECTED:
            if not code and not text:
                raise forms.ValidationError("Say why the image is rejected: pick a reason.")
            if code == ReasonCode.OTHER and not text:
                self.add_error("reason_text", "Describe the problem when the reason is “other”.")
        return data

    def reason_kwargs(self) -> dict[str, str]:
        """The service's reason_code and reason (the reviewer's words, kept for approvals too)."""
        rejected = self.cleaned_data.get("decision") == Verdict.REJECTED
        return {
            "reason_code": self.cleaned_data.get("reason_code", "") if rejected else "",
            "reason": (self.cleaned_data.get("reason_text") or "").strip(),
        }


class DecisionForm(_RejectReason, forms.Form):
    token = forms.UUIDField(widget=forms.HiddenInput)
    campaign = forms.UUIDField(widget=forms.HiddenInput, required=False)
    decision = forms.ChoiceField(
        choices=[(Verdict.APPROVED, "Approve"), (Verdict.REJECTED, "Reject")]
    )
    reason_code = forms.ChoiceField(choices=REJECT_REASONS, required=False, label="Reject reason")
    reason_text = forms.CharField(
        required=False, max_length=1000, label="Details", widget=forms.TextInput
    )


class SkipForm(forms.Form):
    token = forms.UUIDField(widget=forms.HiddenInput)
    campaign = forms.UUIDField(widget=forms.HiddenInput, required=False)


class UndoForm(forms.Form):
    decision = forms.IntegerField(required=False)
    campaign = forms.UUIDField(required=False)


class GridDecisionForm(_RejectReason, forms.Form):
    """Many claimed tasks at once: ``tasks`` values are ``<task id>:<lease token>``."""

    tasks = forms.MultipleChoiceField(required=False)
    campaign = forms.UUIDField(widget=forms.HiddenInput, required=False)
    decision = forms.ChoiceField(
        choices=[(Verdict.APPROVED, "Approve"), (Verdict.REJECTED, "Reject")]
    )
    reason_code = forms.ChoiceField(choices=REJECT_REASONS, required=False, label="Reject reason")
    reason_text = forms.CharField(required=False, max_length=1000, label="Details")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Any value is accepted here and parsed in clean_tasks (the choices are the claims).
        self.fields["tasks"].valid_value = lambda value: True

    def clean_tasks(self) -> list[tuple]:
        import uuid

        claims = []
        for value in self.cleaned_data.get("tasks") or []:
            task_id, _, token = str(value).partition(":")
            try:
                claims.append((uuid.UUID(task_id), uuid.UUID(token)))
            except ValueError:
                raise forms.ValidationError(f"not a claimed image: {value!r}") from None
        if not claims:
            raise forms.ValidationError("Select at least one image.")
        return claims


RULE_ACTIONS = [
    (content.REJECT, "Reject"),
    (content.REVIEW, "Send to review"),
    ("off", "Off"),
]
CLASS_CHOICES = [(name, name.replace("_", " ").lower()) for name in content.CLASSES]


class PolicyForm(forms.Form):
    """Thresholds, CLIP's unwanted concepts and one content rule per code (``<code>_action``,
    ``<code>_min_score``, ``<code>_classes``). A rule whose fields are not submitted keeps the
    policy's current rule (``current_rules``)."""

    approve_at = forms.FloatField(min_value=0.0, max_value=1.0, label="Approve at or above")
    reject_below = forms.FloatField(min_value=0.0, max_value=1.0, label="Reject below")
    unwanted_concepts = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: an image that matches one better than its prompt is flagged.",
    )
    reroute = forms.BooleanField(required=False, label="Re-decide the images waiting in review")

    def __init__(self, *args, current_rules: list[dict] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.current_rules = {rule["code"]: rule for rule in current_rules or []}
        for code in content.RULE_CODES:
            label = reason_label(code)
            self.fields[f"{code}_action"] = forms.ChoiceField(
                choices=RULE_ACTIONS, required=False, label=f"{label}: action"
            )
            self.fields[f"{code}_min_score"] = forms.FloatField(
                min_value=content.MIN_SCORE,
                max_value=1.0,
                required=False,
                label=f"{label}: at a detector score of at least",
            )
            self.fields[f"{code}_classes"] = forms.MultipleChoiceField(
                choices=CLASS_CHOICES,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                label=f"{label}: classes",
            )
            if not self.is_bound:
                rule = self.current_rules.get(code)
                self.initial.setdefault(f"{code}_action", rule["action"] if rule else "off")
                self.initial.setdefault(
                    f"{code}_min_score", rule["min_score"] if rule else _default_score(code)
                )
                self.initial.setdefault(
                    f"{code}_classes", rule["classes"] if rule else _default_classes(code)
                )

    def rule_fields(self) -> list[dict]:
        """Per rule code: its label and bound fields, for the template."""
        return [
            {
                "code": code,
                "label": reason_label(code),
                "action": self[f"{code}_action"],
                "min_score": self[f"{code}_min_score"],
                "classes": self[f"{code}_classes"],
            }
            for code in content.RULE_CODES
        ]

    def clean(self) -> dict:
        data = super().clean()
        low, high = data.get("reject_below"), data.get("approve_at")
        if low is not None and high is not None:
            try:
                check_thresholds(approve_at=high, reject_below=low)
            except InputError as exc:
                for problem in exc.errors:
                    self.add_error(problem.field, problem.message)
        for code in content.RULE_CODES:
            if data.get(f"{code}_action") in content.ACTIONS:
                if data.get(f"{code}_min_score") is None and f"{code}_min_score" not in self.errors:
                    self.add_error(f"{code}_min_score", "Give the score at which the rule acts.")
                if not data.get(f"{code}_classes"):
                    self.add_error(f"{code}_classes", "Pick at least one class.")
        return data

    @property
    def content_rules(self) -> list[dict]:
        """The rules as submitted; a code whose action was not submitted keeps its rule."""
        rules = []
        for code in content.RULE_CODES:
            action = self.cleaned_data.get(f"{code}_action")
            if not action:
                if code in self.current_rules:
                    rules.append(self.current_rules[code])
                continue
            if action == "off":
                continue
            rules.append(
                {
                    "code": code,
                    "classes": list(self.cleaned_data[f"{code}_classes"]),
                    "min_score": self.cleaned_data[f"{code}_min_score"],
                    "action": action,
                }
            )
        return rules

    @property
    def concepts(self) -> list[str]:
        text = self.cleaned_data.get("unwanted_concepts") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


def _default_score(code: str) -> float:
    return content.NSFW_MIN_SCORE if code == "nsfw" else content.PERSON_MIN_SCORE


def _default_classes(code: str) -> list[str]:
    return list(content.NSFW_CLASSES if code == "nsfw" else content.PERSON_CLASSES)


class ReferenceImageForm(forms.Form):
    image = forms.FileField(help_text="PNG, JPEG or WEBP: the look the campaign should have.")
