from __future__ import annotations

import re
import uuid
from datetime import date

from django import forms
from django.db.models import QuerySet
from django.http import QueryDict
from django.urls import reverse

from catalogue.models import Asset, Entry
from catalogue.selectors import FACETS, SORTS, SearchFilters, entries_filtered
from catalogue.services import tags_check
from generation.models import Item, Purpose
from review.vocabulary import ReasonCode, Verdict
from studio.errors import InputError

QUERY_MAX = 2000
PAGE_MAX = 100_000
_NAME_VERSION = re.compile(r"^([A-Za-z0-9][\w.\-/]{0,99})(?::(\d{1,9}))?$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
PUBLISHED_CHOICES = [("any", "Any"), ("yes", "Published"), ("no", "Not published")]
# Item statuses, and the status of an image whose asset was withdrawn (which the default
# search leaves out): asking for it finds them.
STATUS_CHOICES = [*Item.Status.choices, (Asset.Status.WITHDRAWN, "Withdrawn")]
WITHDRAWN_CHOICES = [("include", "Shown too"), ("only", "Only withdrawn")]
EXPIRED_CHOICES = [("yes", "Expired"), ("no", "Not expired")]
EXPIRING_MAX = 3650
# Rights expiring soon, as the page offers it first.
EXPIRING_DEFAULT = 30


def _values(choices) -> str:
    return ", ".join(value for value, _ in choices if value)


def _choice(label: str, choices, *, blank: str = "Any") -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label,
        required=False,
        choices=[("", blank), *choices],
        error_messages={"invalid_choice": f"“%(value)s” is not one; use {_values(choices)}."},
    )


def _date(label: str) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Use a date as YYYY-MM-DD, e.g. 2026-03-31."},
    )


def _number(label: str, *, low=None, high=None, decimal: bool = False) -> forms.Field:
    accepts = f"a number from {low} to {high}" if high is not None else f"a number ≥ {low}"
    messages = {
        "invalid": f"Use {accepts}.",
        "min_value": f"Use {accepts}.",
        "max_value": f"Use {accepts}.",
        "max_digits": f"Use {accepts} with at most 6 decimals.",
        "max_decimal_places": f"Use {accepts} with at most 6 decimals.",
        "max_whole_digits": f"Use {accepts} below 1,000,000.",
    }
    attrs = {"inputmode": "decimal", "step": "any"}
    if decimal:
        return forms.DecimalField(
            label=label,
            required=False,
            min_value=low,
            max_digits=12,
            decimal_places=6,
            error_messages=messages,
            widget=forms.NumberInput(attrs=attrs),
        )
    return forms.FloatField(
        label=label,
        required=False,
        min_value=low,
        max_value=high,
        error_messages=messages,
        widget=forms.NumberInput(attrs=attrs),
    )


class CatalogueSearchForm(forms.Form):
    """The catalogue's search, for the page and the command line alike: every value is
    checked here, and a bad one is a message on its field, never an empty result."""

    # The filters shown first; the rest sit in a <details>.
    MAIN = ("status", "reason", "campaign", "sort")

    q = forms.CharField(
        required=False,
        max_length=QUERY_MAX,
        strip=True,
        label="Search",
        error_messages={
            "max_length": f"Use at most {QUERY_MAX} characters (this is %(show_value)d)."
        },
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": 'e.g. red sneaker, "trail ranger", boot OR sandal, -leather',
                "autocomplete": "off",
            }
        ),
    )
    status = forms.MultipleChoiceField(
        label="Status",
        required=False,
        choices=STATUS_CHOICES,
        error_messages={
            "invalid_choice": f"“%(value)s” is not one; use {_values(STATUS_CHOICES)}."
        },
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )
    verdict = _choice("Automatic verdict", Verdict.choices)
    reason = _choice("Reason", ReasonCode.choices)
    reviewer = forms.CharField(
        label="Reviewer",
        required=False,
        max_length=150,
        error_messages={"max_length": "Use a username of at most 150 characters."},
    )
    campaign = forms.UUIDField(
        label="Campaign id",
        required=False,
        error_messages={"invalid": "Use a campaign id (a UUID, as in the campaign's address)."},
    )
    template = forms.IntegerField(
        label="Template version id",
        required=False,
        min_value=1,
        error_messages={
            "invalid": "Use a template version id (a whole number ≥ 1).",
            "min_value": "Use a template version id (a whole number ≥ 1).",
        },
    )
    recipe = forms.IntegerField(
        label="Recipe id",
        required=False,
        min_value=1,
        error_messages={
            "invalid": "Use a recipe id (a whole number ≥ 1).",
            "min_value": "Use a recipe id (a whole number ≥ 1).",
        },
    )
    model = forms.CharField(
        label="Base model", required=False, max_length=120, help_text="NAME or NAME:VERSION"
    )
    lora = forms.CharField(
        label="LoRA", required=False, max_length=120, help_text="NAME or NAME:VERSION"
    )
    purpose = _choice("Purpose", Purpose.choices)
    channel = forms.CharField(
        label="Channel",
        required=False,
        max_length=40,
        error_messages={"max_length": "Use a channel name of at most 40 characters."},
    )
    rights = _choice("Rights", Asset.Rights.choices)
    rights_expiring = forms.IntegerField(
        label="Rights expire within (days)",
        required=False,
        min_value=0,
        max_value=EXPIRING_MAX,
        help_text=f"e.g. {EXPIRING_DEFAULT}: rights that end in the next {EXPIRING_DEFAULT} days.",
        error_messages={
            name: f"Use a whole number of days from 0 to {EXPIRING_MAX}, e.g. {EXPIRING_DEFAULT}."
            for name in ("invalid", "min_value", "max_value")
        },
        widget=forms.NumberInput(attrs={"placeholder": str(EXPIRING_DEFAULT)}),
    )
    rights_expired = _choice("Rights expired", EXPIRED_CHOICES)
    withdrawn = _choice("Withdrawn images", WITHDRAWN_CHOICES, blank="Hidden")
    published = forms.ChoiceField(
        label="Published",
        required=False,
        choices=PUBLISHED_CHOICES,
        error_messages={"invalid_choice": "“%(value)s” is not one; use yes, no or any."},
    )
    since = _date("Generated since")
    until = _date("Generated until")
    month = forms.CharField(
        label="Month generated",
        required=False,
        max_length=7,
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"}),
        error_messages={"max_length": "Use a month as YYYY-MM, e.g. 2026-03."},
    )
    approved_since = _date("Approved since")
    approved_until = _date("Approved until")
    min_score = _number("Score at least", low=0, high=1)
    max_score = _number("Score at most", low=0, high=1)
    min_cost = _number("Cost at least", low=0, decimal=True)
    max_cost = _number("Cost at most", low=0, decimal=True)
    sort = forms.ChoiceField(
        label="Sort",
        required=False,
        choices=[
            ("relevance", "Best match"),
            ("newest", "Newest"),
            ("score", "Highest score"),
            ("cost", "Highest cost"),
        ],
        error_messages={"invalid_choice": f"“%(value)s” is not one; use {', '.join(SORTS)}."},
    )
    page = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=PAGE_MAX,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": f"Use a page number from 1 to {PAGE_MAX}.",
            "min_value": f"Use a page number from 1 to {PAGE_MAX}.",
            "max_value": f"Use a page number from 1 to {PAGE_MAX}.",
        },
    )

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    @staticmethod
    def _name_version(value: str, what: str) -> tuple[str, int | None]:
        value = (value or "").strip()
        if not value:
            return "", None
        match = _NAME_VERSION.match(value)
        if not match:
            raise forms.ValidationError(
                f"Use the {what}'s NAME or NAME:VERSION with a whole version number, "
                f"e.g. {'sd15:1' if what == 'model' else 'style:2'}."
            )
        return match[1], int(match[2]) if match[2] else None

    def clean_model(self) -> tuple[str, int | None]:
        return self._name_version(self.cleaned_data["model"], "model")

    def clean_lora(self) -> tuple[str, int | None]:
        return self._name_version(self.cleaned_data["lora"], "LoRA")

    def clean_month(self) -> date | None:
        value = (self.cleaned_data["month"] or "").strip()
        if not value:
            return None
        match = _MONTH.match(value)
        if not match or not (1 <= int(match[2]) <= 12) or int(match[1]) < 1:
            raise forms.ValidationError("Use a month as YYYY-MM, e.g. 2026-03.")
        return date(int(match[1]), int(match[2]), 1)

    def clean_published(self) -> bool | None:
        return {"yes": True, "no": False}.get(self.cleaned_data["published"])

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or "relevance"

    def clean(self) -> dict:
        data = super().clean()
        for low, high, what in (
            ("since", "until", "date"),
            ("approved_since", "approved_until", "date"),
            ("min_score", "max_score", "score"),
            ("min_cost", "max_cost", "cost"),
        ):
            a, b = data.get(low), data.get(high)
            if a is not None and b is not None and a > b:
                self.add_error(high, f"Use a {what} no lower than {self[low].label.lower()}.")
        return data

    def filters(self) -> SearchFilters:
        data = self.cleaned_data
        model_name, model_version = data["model"]
        lora_name, lora_version = data["lora"]
        return SearchFilters(
            statuses=tuple(data["status"]),
            verdict=data["verdict"],
            reason=data["reason"],
            reviewer=data["reviewer"].strip(),
            campaign_id=data["campaign"],
            template_version_id=data["template"],
            recipe_id=data["recipe"],
            model_name=model_name,
            model_version=model_version,
            lora_name=lora_name,
            lora_version=lora_version,
            purpose=data["purpose"],
            channel=data["channel"].strip(),
            rights=data["rights"],
            rights_expiring_days=data["rights_expiring"],
            rights_expired={"yes": True, "no": False}.get(data["rights_expired"]),
            withdrawn=data["withdrawn"] or "hide",
            published=data["published"],
            generated_from=data["since"],
            generated_until=data["until"],
            month=data["month"],
            approved_from=data["approved_since"],
            approved_until=data["approved_until"],
            score_min=data["min_score"],
            score_max=data["max_score"],
            cost_min=data["min_cost"],
            cost_max=data["max_cost"],
        )

    def search_kwargs(self) -> dict:
        """entry_search's arguments; call after is_valid()."""
        return {
            "query": self.cleaned_data["q"],
            "filters": self.filters(),
            "sort": self.cleaned_data["sort"],
            "page": self.cleaned_data["page"] or 1,
        }

    def error_lines(self) -> list[tuple[str, str, str]]:
        """(field name, its label, message) for every problem, to show and to print."""
        lines = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else ""
            for message in errors:
                lines.append((name, label or name, message))
        return lines

    # --- For the page: links that change one filter and keep the others -------------------

    def more_fields(self) -> list:
        return [self[name] for name in self.fields if name not in (*self.MAIN, "q", "page")]

    def more_open(self) -> bool:
        """The extra filters stay open while one of them is set or wrong."""
        return any(field.errors or self.data.get(field.name) for field in self.more_fields())

    def _href(self, **changes) -> str:
        params = self.data.copy() if isinstance(self.data, QueryDict) else QueryDict(mutable=True)
        params._mutable = True
        params.pop("page", None)
        for name, value in changes.items():
            if value is None:
                params.pop(name, None)
            elif isinstance(value, list):
                params.setlist(name, value)
            else:
                params[name] = value
        return "?" + params.urlencode() if params else "?"

    def facet_groups(self, facets: dict) -> list[dict]:
        """Each facet with its values, counts and a link that narrows the search to a value."""
        groups = []
        for name in FACETS:
            values = facets.get(name) or []
            if not values:
                continue
            current = self.data.getlist(name) if isinstance(self.data, QueryDict) else []
            links = [
                {
                    "label": facet.label,
                    "count": facet.count,
                    "active": facet.value in current,
                    "href": self._href(**{name: [facet.value]}),
                }
                for facet in values
            ]
            groups.append({"name": name, "title": FACET_TITLES[name], "values": links})
        return groups

    def active_filters(self, facets: dict) -> list[dict]:
        """The filters in force, each with a link that removes it (and keeps the rest)."""
        if not self.is_valid():
            return []
        labels = {
            (name, facet.value): facet.label for name, values in facets.items() for facet in values
        }
        active = []
        for name, field in self.fields.items():
            if name in ("q", "sort", "page"):
                continue
            raw = self.data.getlist(name) if isinstance(self.data, QueryDict) else []
            raw = [value for value in raw if value.strip() and value != "any"]
            choices = {str(v): label for v, label in getattr(field, "choices", [])}
            for value in raw:
                rest = [other for other in raw if other != value]
                active.append(
                    {
                        "field": field.label,
                        "value": labels.get((name, value), choices.get(value, value)),
                        "href": self._href(**{name: rest or None}),
                    }
                )
        return active


FACET_TITLES = {
    "status": "Status",
    "reason": "Reason",
    "campaign": "Campaign",
    "model": "Base model",
    "lora": "LoRA",
    "purpose": "Purpose",
    "rights": "Rights",
    "month": "Month",
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


# --- Bulk actions on a search's results -----------------------------------------------------

SELECTION_MAX = 500
SEARCH_PARAMS_MAX = 20_000


class ImageIdsField(forms.Field):
    """The ids of the images ticked on a page of results (repeated ``selected`` values)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[uuid.UUID]:
        values = [value] if isinstance(value, str) else list(value or [])
        if len(values) > SELECTION_MAX:
            raise forms.ValidationError(
                f"Tick at most {SELECTION_MAX} images, or choose all results of this search."
            )
        ids = []
        for raw in values:
            try:
                ids.append(uuid.UUID(str(raw)))
            except ValueError:
                raise forms.ValidationError(
                    f"“{str(raw)[:40]}” is not an image id; tick images on the results page."
                ) from None
        return list(dict.fromkeys(ids))


class SelectionForm(forms.Form):
    """What a bulk action applies to: the images ticked on a page of results, or every
    result of the search they came from. ``search`` is that search's query string, checked
    as the search page checks it, and where the action returns to."""

    search = forms.CharField(
        required=False,
        max_length=SEARCH_PARAMS_MAX,
        strip=False,
        widget=forms.HiddenInput,
        error_messages={"max_length": "The search is too long to act on; search again."},
    )
    scope = forms.ChoiceField(
        label="Apply to",
        required=False,
        choices=[("selected", "The images ticked"), ("all", "All results of this search")],
        initial="selected",
        widget=forms.RadioSelect,
        error_messages={
            "invalid_choice": "“%(value)s” is not one; use selected or all.",
        },
    )
    selected = ImageIdsField(required=False, label="Images")

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        kwargs.setdefault("auto_id", "sel_%s")
        super().__init__(*args, **kwargs)

    def clean_scope(self) -> str:
        return self.cleaned_data["scope"] or "selected"

    def search_params(self) -> QueryDict:
        """The search's parameters (empty when they cannot be read)."""
        raw = self.data.get("search", "") if hasattr(self.data, "get") else ""
        if not isinstance(raw, str) or len(raw) > SEARCH_PARAMS_MAX:
            return QueryDict()
        return QueryDict(raw)

    def clean(self) -> dict:
        data = super().clean()
        self.search_form = CatalogueSearchForm(self.search_params())
        if "search" not in self.errors and not self.search_form.is_valid():
            name, label, message = self.search_form.error_lines()[0]
            self.add_error("search", f"The search is not valid ({label}: {message})")
        if data.get("scope") == "selected" and not data.get("selected"):
            if "selected" not in self.errors:
                self.add_error(
                    "selected", "Tick at least one image, or choose all results of this search."
                )
        return data

    def item_ids(self) -> QuerySet:
        """The selected images' ids, as a query the service reads in batches (call after
        is_valid()): every result of the search, or the ticked images that exist."""
        if self.cleaned_data["scope"] == "all":
            kwargs = self.search_form.search_kwargs()
            entries = entries_filtered(query=kwargs["query"], filters=kwargs["filters"])
        else:
            entries = Entry.objects.filter(item_id__in=self.cleaned_data["selected"])
        return entries.order_by().values_list("item_id", flat=True)

    def back_url(self) -> str:
        """The same search page, its query string kept."""
        params = self.search_params()
        url = reverse("catalogue:search")
        return f"{url}?{params.urlencode()}" if params else url

    def add_input_errors(self, error) -> None:
        """A service's InputError, on the fields it names."""
        for problem in error.errors:
            self.add_error(problem.field if problem.field in self.fields else None, problem.message)

    def error_lines(self) -> list[tuple[str, str, str]]:
        lines = []
        for name, errors in self.errors.items():
            label = self[name].label if name in self.fields else ""
            for message in errors:
                lines.append((name, label or name, message))
        return lines


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class SelectionTagsForm(SelectionForm):
    """Tags to add to and remove from a selection (catalogue.services.entries_tags_edit)."""

    add = forms.CharField(
        label="Add tags",
        required=False,
        max_length=2000,
        help_text="Comma-separated, e.g. hero shot, summer",
    )
    remove = forms.CharField(
        label="Remove tags",
        required=False,
        max_length=2000,
        help_text="Comma-separated",
    )

    def clean(self) -> dict:
        data = super().clean()
        try:
            data["add"], data["remove"] = tags_check(
                add=_split(data.get("add", "")), remove=_split(data.get("remove", ""))
            )
        except InputError as exc:
            self.add_input_errors(exc)
        return data

    def tags_kwargs(self) -> dict:
        """The tags to add and remove, as the service will write them."""
        return {"add": self.cleaned_data["add"], "remove": self.cleaned_data["remove"]}


class SelectionRightsForm(SelectionForm, RightsForm):
    """Usage rights for every published asset of a selection
    (catalogue.services.entries_rights_set)."""

    def rights_fields(self) -> list:
        return [self[name] for name in RightsForm.base_fields]
