"""Export pages: the list (one's own; managers and admins see all), creating one from a
campaign or a search, its progress, and the download.

Creatives, managers and admins export; reviewers judge images but do not hand them over, so
they (and users without a role) are refused."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from catalogue.delivery.exports import (
    EXPORTERS,
    export_create,
    export_download_name,
    export_may_see,
    export_progress,
    export_selection_label,
    exports_for_user,
)
from catalogue.delivery.files import file_response
from catalogue.forms import SEARCH_PARAMS_MAX
from catalogue.models import Export
from generation.models import Campaign
from studio.errors import InputError
from studio.roles import role_required

LIST_SIZE = 100
LIVE = (Export.Status.QUEUED, Export.Status.BUILDING)


class ExportForm(forms.Form):
    """What an Export button posts: a campaign id, or the search page's query string."""

    campaign = forms.UUIDField(
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": "Use a campaign id (a UUID, as in the campaign's address)."},
    )
    search = forms.CharField(
        required=False,
        strip=False,
        max_length=SEARCH_PARAMS_MAX,
        widget=forms.HiddenInput,
        error_messages={"max_length": "The search is too long to export; search again."},
    )
    layout = forms.ChoiceField(
        choices=Export.Layout.choices,
        required=False,
        error_messages={
            "invalid_choice": "“%(value)s” is not a layout; use default or game-engine."
        },
    )
    include_expired = forms.BooleanField(required=False, label="Include expired rights")

    def clean(self) -> dict:
        data = super().clean()
        if not self.errors and bool(data.get("campaign")) == bool("search" in self.data):
            raise forms.ValidationError("Export either a campaign or a search.")
        return data

    def export_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {
            "layout": data["layout"] or Export.Layout.DEFAULT,
            "include_expired": data["include_expired"],
        }
        if data["campaign"]:
            campaign = Campaign.objects.filter(pk=data["campaign"]).only("pk", "name").first()
            if campaign is None:
                raise InputError("campaign", "no such campaign")
            kwargs["campaign"] = campaign
        else:
            kwargs["search"] = QueryDict(data["search"] or "")
        return kwargs


def _add_input_errors(form: ExportForm, exc: InputError) -> None:
    """A service's InputError on the form: a search filter's on the search, as ``name: ...``."""
    for problem in exc.errors:
        if problem.field in form.fields:
            form.add_error(problem.field, problem.message)
        elif problem.field.startswith("search."):
            form.add_error("search", f"{problem.field.removeprefix('search.')}: {problem.message}")
        else:
            form.add_error(None, problem.message)


def _get_export_for_user(request: HttpRequest, pk) -> Export:
    """One's own export; managers and admins may open every one. Another's is a 404."""
    export = get_object_or_404(Export.objects.select_related("campaign", "created_by"), pk=pk)
    if not export_may_see(request.user, export):
        raise Http404("No such export.")
    return export


def _rows(exports) -> list[Export]:
    for export in exports:
        export.percent = export_progress(export)
        export.selection = export_selection_label(export)
        export.left_count = len(export.left_out or [])
    return exports


def _list_context(request: HttpRequest, *, form: ExportForm | None = None) -> dict:
    exports = _rows(list(exports_for_user(request.user)[:LIST_SIZE]))
    return {
        "exports": exports,
        "live": any(export.status in LIVE for export in exports),
        "form": form,
        "errors": _errors(form) if form is not None else [],
    }


def _errors(form: ExportForm) -> list[tuple[str, str]]:
    return [(name, message) for name, messages_ in form.errors.items() for message in messages_]


@require_GET
@role_required(*EXPORTERS)
def exports(request: HttpRequest) -> HttpResponse:
    template = "catalogue/exports.html"
    if request.htmx:
        template += "#list"
    return render(request, template, _list_context(request))


@require_POST
@role_required(*EXPORTERS)
def export_new(request: HttpRequest) -> HttpResponse:
    """Queue an export of a campaign (its page's button) or of every result of a search (the
    search page's button posts its query string); bad input is a 400 naming the field."""
    form = ExportForm(request.POST)
    if form.is_valid():
        try:
            export = export_create(user=request.user, **form.export_kwargs())
        except InputError as exc:
            _add_input_errors(form, exc)
        else:
            messages.success(
                request, f"Export queued: {export.total} image{'s' if export.total != 1 else ''}."
            )
            return redirect("catalogue:export", pk=export.pk)
    return render(request, "catalogue/exports.html", _list_context(request, form=form), status=400)


@require_GET
@role_required(*EXPORTERS)
def export_detail(request: HttpRequest, pk) -> HttpResponse:
    export = _get_export_for_user(request, pk)
    _rows([export])
    context = {"export": export, "live": export.status in LIVE}
    template = "catalogue/export_detail.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, context)


@require_GET
@role_required(*EXPORTERS)
def export_download(request: HttpRequest, pk) -> HttpResponseBase:
    """The zip, after the permission check; only while it is ready (an expired one's file is
    gone)."""
    export = _get_export_for_user(request, pk)
    if export.status != Export.Status.READY or not export.file.name:
        if export.status == Export.Status.EXPIRED:
            raise Http404("This export expired; make it again.")
        raise Http404("This export is not ready.")
    return file_response(export.file.name, download_name=export_download_name(export))
