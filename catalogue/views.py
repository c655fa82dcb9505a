from __future__ import annotations

from datetime import timedelta
from pathlib import PurePosixPath

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from catalogue.delivery.files import file_response
from catalogue.forms import (
    EXPIRING_DEFAULT,
    SELECTION_MAX,
    CatalogueSearchForm,
    RightsForm,
    SelectionRightsForm,
    SelectionTagsForm,
)
from catalogue.models import Asset, Rendition
from catalogue.selectors import SearchResults, entry_search
from catalogue.services import (
    asset_download_name,
    assets_rights_set,
    entries_rights_set,
    entries_tags_edit,
)
from generation.models import Item
from review.selectors import review_decisions_for_item
from studio.errors import InputError
from studio.roles import ADMIN, ALL_ROLES, CREATIVE, MANAGER, has_role, role_required

SEARCH_PER_PAGE = 48
# What the media view serves: images the pipeline wrote. Anything else in storage (a CSV kept
# between form posts, say) is not for every role to download.
MEDIA_FOLDERS = ("items", "thumbnails", "references", "renditions", "masters")


def _get_asset_for_user(request: HttpRequest, pk) -> Asset:
    """Every role may read every asset; the decorator already checked the role."""
    return get_object_or_404(
        Asset.objects.select_related(
            "campaign__template_version__template",
            "campaign__recipe",
            "item__base_model",
            "item__quality",
            "item__review_task__decided_by",
        ),
        pk=pk,
    )


class ResultsPage:
    """What templates/includes/pagination.html reads from a Paginator page, built from the
    count entry_search already made (a Paginator would count, or load, the rows again)."""

    def __init__(self, results: SearchResults) -> None:
        self.number = results.page
        self.num_pages = results.pages
        self.paginator = self

    def has_other_pages(self) -> bool:
        return self.num_pages > 1

    def has_previous(self) -> bool:
        return self.number > 1

    def has_next(self) -> bool:
        return self.number < self.num_pages

    def previous_page_number(self) -> int:
        return self.number - 1

    def next_page_number(self) -> int:
        return self.number + 1


def _files_refused(user, *, asset_status: str, item_status: str, thumbnail: bool) -> bool:
    """A withdrawn asset's files are for admins only. Its image is the item's own file too:
    while the item is back in review (its approval undone) the review queue shows it again."""
    if asset_status != Asset.Status.WITHDRAWN or has_role(user, ADMIN):
        return False
    return thumbnail or item_status != Item.Status.REVIEW


def _rights_state(until, today) -> tuple[str, str] | None:
    """("expired" | "expiring", a label) for rights that ended or end soon."""
    if until is None:
        return None
    if until < today:
        return ("expired", f"Rights expired {until:%Y-%m-%d}")
    if until <= today + timedelta(days=EXPIRING_DEFAULT):
        return ("expiring", f"Rights end {until:%Y-%m-%d}")
    return None


def _cards(entries: list, *, user) -> list:
    """What a result card shows beside the entry's own columns."""
    from review.vocabulary import Verdict, reason_label

    statuses, verdicts = dict(Item.Status.choices), dict(Verdict.choices)
    today = timezone.localdate()
    for entry in entries:
        entry.asset = getattr(entry.item, "asset", None)
        published = entry.asset is not None and entry.asset.status == Asset.Status.PUBLISHED
        if entry.asset is not None:
            entry.badge = (entry.asset.status, entry.asset.get_status_display())
        else:
            entry.badge = (entry.status, statuses.get(entry.status, entry.status))
        entry.placeholder = "No image yet"
        if published:
            entry.thumb = entry.asset.thumbnail.name or entry.asset.image.name
        elif entry.asset is not None and _files_refused(
            user, asset_status=entry.asset.status, item_status=entry.item.status, thumbnail=False
        ):
            entry.thumb, entry.placeholder = "", "Withdrawn: only admins see it"
        else:
            entry.thumb = entry.item.image.name if entry.item.image else ""
        entry.rights_state = _rights_state(entry.rights_until, today)
        # A published image goes by its asset's title, as on the asset page.
        entry.card_title = entry.asset.title if entry.asset is not None else entry.title
        entry.verdict_label = verdicts.get(entry.verdict, entry.verdict)
        entry.reason_labels = [reason_label(code) for code in entry.reason_codes]
        entry.match = round(entry.rank * 100) if getattr(entry, "rank", None) is not None else None
    return entries


@require_GET
@role_required(*ALL_ROLES)
def search(request: HttpRequest) -> HttpResponse:
    """Every image a campaign made, by text, filters and facets; a bad value is a message on
    its field (400), never an empty page."""
    return _search_page(request, request.GET)


def _search_page(
    request: HttpRequest,
    params,
    *,
    status: int = 200,
    tags_form: SelectionTagsForm | None = None,
    rights_form: SelectionRightsForm | None = None,
) -> HttpResponse:
    """The search page for these parameters; after a refused bulk action (``status`` 400)
    with that action's form and its messages."""
    form = CatalogueSearchForm(params)
    results = None
    if form.is_valid():
        results = entry_search(**form.search_kwargs(), per_page=SEARCH_PER_PAGE)
        _cards(results.entries, user=request.user)
    facets = results.facets if results else {}
    action = tags_form or rights_form
    context = {
        "form": form,
        "results": results,
        "page": ResultsPage(results) if results else None,
        "facet_groups": form.facet_groups(facets),
        "active_filters": form.active_filters(facets),
        "search_params": params.urlencode(),
        "may_edit": has_role(request.user, CREATIVE, MANAGER, ADMIN),
        "tags_form": tags_form or SelectionTagsForm(),
        "rights_form": rights_form or SelectionRightsForm(),
        "selection_errors": action.error_lines() if action is not None else [],
        "selected": set(_ticked(action)),
        "scope": action.data.get("scope") if action is not None else "selected",
        "expiring_default": EXPIRING_DEFAULT,
    }
    template = "catalogue/search.html"
    if request.htmx:
        template += "#results"
    # htmx swaps no 4xx response by default: its partial answers 200 so the messages show.
    if results is None and not request.htmx:
        status = 400
    return render(request, template, context, status=status)


def _ticked(form) -> list:
    """The ids ticked in a refused action's form, so the page shows them ticked again."""
    if form is None or not hasattr(form.data, "getlist"):
        return []
    return form.data.getlist("selected")[:SELECTION_MAX]


def _images(count: int) -> str:
    return f"{count} image{'s' if count != 1 else ''}"


@require_POST
@role_required(CREATIVE, MANAGER, ADMIN)
def selection_tags(request: HttpRequest) -> HttpResponse:
    """Add and remove tags on the ticked images or on every result of the search."""
    form = SelectionTagsForm(request.POST)
    if form.is_valid():
        kwargs = form.tags_kwargs()
        try:
            changed = entries_tags_edit(item_ids=form.item_ids(), **kwargs)
        except InputError as exc:
            form.add_input_errors(exc)
        else:
            done = []
            if kwargs["add"]:
                done.append(f"added {', '.join(kwargs['add'])}")
            if kwargs["remove"]:
                done.append(f"removed {', '.join(kwargs['remove'])}")
            messages.success(request, f"Tags on {_images(changed)}: {'; '.join(done)}.")
            return redirect(form.back_url())
    return _search_page(request, form.search_params(), status=400, tags_form=form)


@require_POST
@role_required(CREATIVE, MANAGER, ADMIN)
def selection_rights(request: HttpRequest) -> HttpResponse:
    """Set the usage rights of every published asset among the ticked images or the
    search's results; the others are skipped, and the message says how many and why."""
    form = SelectionRightsForm(request.POST)
    if form.is_valid():
        try:
            counts = entries_rights_set(
                item_ids=form.item_ids(), user=request.user, **form.rights_kwargs()
            )
        except InputError as exc:
            form.add_input_errors(exc)
        else:
            _rights_message(request, counts)
            return redirect(form.back_url())
    return _search_page(request, form.search_params(), status=400, rights_form=form)


def _rights_message(request: HttpRequest, counts: dict[str, int]) -> None:
    skipped = []
    if counts["not_published"]:
        skipped.append(
            f"{counts['not_published']} not published (only a published image has rights)"
        )
    if counts["withdrawn"]:
        skipped.append(f"{counts['withdrawn']} withdrawn")
    text = f"Usage rights set on {_images(counts['changed'])}."
    if skipped:
        total = counts["not_published"] + counts["withdrawn"]
        text += f" Skipped {total}: {'; '.join(skipped)}."
    (messages.success if counts["changed"] else messages.warning)(request, text)


@require_GET
@role_required(*ALL_ROLES)
def asset_detail(request: HttpRequest, pk) -> HttpResponse:
    asset = _get_asset_for_user(request, pk)
    return render(request, "catalogue/asset_detail.html", _asset_context(request, asset))


def _asset_context(request: HttpRequest, asset: Asset, *, rights_form=None) -> dict:
    item = asset.item
    quality = getattr(item, "quality", None)
    return {
        "asset": asset,
        "image_refused": _files_refused(
            request.user, asset_status=asset.status, item_status=item.status, thumbnail=False
        ),
        "rights_state": _rights_state(asset.rights_until, timezone.localdate()),
        "item": item,
        "campaign": asset.campaign,
        "provenance": asset.provenance,
        "quality": quality,
        "scores": sorted(quality.scores.items()) if quality else [],
        "measures": sorted(quality.measures.items()) if quality else [],
        "decisions": review_decisions_for_item(item_id=item.pk),
        "rights_form": rights_form or RightsForm(initial=RightsForm.initial_for(asset)),
        "rights_changes": asset.rights_changes.select_related("changed_by")[:20],
    }


def _safe_storage_name(path: str) -> str:
    """A storage-relative name, or 404 for anything that could leave the storage root."""
    if not path or "\\" in path or "\x00" in path or path.startswith("/"):
        raise Http404("No such file.")
    parts = PurePosixPath(path).parts
    if any(part in ("..", ".") for part in parts) or ":" in parts[0]:
        raise Http404("No such file.")
    if parts[0] not in MEDIA_FOLDERS:
        raise Http404("No such file.")
    return "/".join(parts)


@require_GET
@role_required(*ALL_ROLES)
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Generated images are not public: serve them from storage to users with a role; a
    withdrawn asset's files only to admins."""
    name = _safe_storage_name(path)
    if not has_role(request.user, ADMIN):
        owner = (
            Asset.objects.filter(status=Asset.Status.WITHDRAWN)
            .filter(Q(image=name) | Q(thumbnail=name))
            .values_list("thumbnail", "item__status")
            .first()
        )
        if owner is not None and _files_refused(
            request.user,
            asset_status=Asset.Status.WITHDRAWN,
            item_status=owner[1],
            thumbnail=name == owner[0],
        ):
            raise PermissionDenied("This image was withdrawn; only an admin may see it.")
        if Rendition.objects.filter(file=name, asset__status=Asset.Status.WITHDRAWN).exists():
            raise PermissionDenied("This image was withdrawn; only an admin may see it.")
    return file_response(name)


@require_GET
@role_required(*ALL_ROLES)
def asset_download(request: HttpRequest, pk) -> HttpResponseBase:
    """The original under a human file name; a withdrawn asset only for admins."""
    asset = _get_asset_for_user(request, pk)
    if asset.status == Asset.Status.WITHDRAWN and not has_role(request.user, ADMIN):
        raise PermissionDenied("This image was withdrawn; only an admin may download it.")
    return file_response(asset.image.name, download_name=asset_download_name(asset))


@require_POST
@role_required(CREATIVE, MANAGER, ADMIN)
def asset_rights(request: HttpRequest, pk) -> HttpResponse:
    """Set an asset's usage rights (creatives and managers); audited by the service."""
    asset = _get_asset_for_user(request, pk)
    form = RightsForm(request.POST)
    if form.is_valid():
        try:
            assets_rights_set(assets=[asset], user=request.user, **form.rights_kwargs())
        except InputError as exc:
            for problem in exc.errors:
                form.add_error(
                    problem.field if problem.field in form.fields else None, problem.message
                )
        else:
            messages.success(request, "Usage rights saved.")
            return redirect("catalogue:asset", pk=asset.pk)
    context = _asset_context(request, asset, rights_form=form)
    return render(request, "catalogue/asset_detail.html", context, status=400)
