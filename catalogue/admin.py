"""Admin for published assets: rights, status, title and tags change; provenance never does."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from catalogue.models import Asset, Delivery, Export, PostingSlot, Rendition
from catalogue.services import (
    asset_restore,
    asset_withdraw,
    entries_sync,
)
from studio.admin import ReadOnlyAdmin
from studio.errors import InputError

# Only what a person may correct; provenance and the image itself are never edited. Status
# changes only through the withdraw / restore actions (catalogue.services), which record why.
ASSET_EDITABLE_FIELDS = ("title", "tags", "rights")


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["title", "campaign", "status", "rights", "approved_by", "cost", "created_at"]
    list_filter = ["status", "rights"]
    search_fields = ["title", "prompt", "campaign__name"]
    list_select_related = ["campaign"]
    date_hierarchy = "created_at"
    fields = [
        "preview",
        "title",
        "tags",
        "status",
        "withdrawn_reason",
        "withdrawn_note",
        "withdrawn_by",
        "withdrawn_at",
        "rights",
        "campaign",
        "item",
        "prompt",
        "fields",
        "provenance",
        "image",
        "thumbnail",
        "width",
        "height",
        "cost",
        "approved_by",
        "created_at",
    ]
    readonly_fields = [name for name in fields if name not in ASSET_EDITABLE_FIELDS]
    actions = ["withdraw", "restore"]

    @admin.action(description="Withdraw the selected assets (stays withdrawn until restored)")
    def withdraw(self, request, queryset) -> None:
        count = 0
        for asset in queryset:
            if asset_withdraw(asset=asset, user=request.user):
                self.log_change(request, asset, "Withdrawn by an admin.")
                count += 1
        self.message_user(request, f"{count} asset(s) withdrawn.", messages.SUCCESS)

    @admin.action(description="Publish the selected withdrawn assets again")
    def restore(self, request, queryset) -> None:
        count = 0
        for asset in queryset:
            try:
                if asset_restore(asset=asset, user=request.user):
                    self.log_change(request, asset, "Published again by an admin.")
                    count += 1
            except InputError as exc:
                self.message_user(request, f"{asset}: {exc.errors[0].message}", messages.ERROR)
        self.message_user(request, f"{count} asset(s) published again.", messages.SUCCESS)

    @admin.display(description="image")
    def preview(self, obj: Asset) -> str:
        name = obj.thumbnail.name or obj.image.name
        if not name:
            return "—"
        return format_html(
            '<img src="{}" alt="" style="max-width: 256px; border-radius: 4px">',
            reverse("catalogue:media", args=[name]),
        )

    def has_add_permission(self, request) -> bool:
        return False  # assets are published from approved items (catalogue.services)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # withdraw instead: the audit trail points at assets

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        # Tags and rights are part of the catalogue's entry, which is refreshed explicitly.
        entries_sync(item_ids=[obj.item_id])


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "channels", "watermark", "max_upscale", "version", "updated_at"]
    list_select_related = ["campaign"]


@admin.register(Rendition)
class RenditionAdmin(ReadOnlyAdmin):
    list_display = ["asset", "channel", "width", "height", "format", "upscaled", "signed"]
    list_filter = ["channel", "format", "upscaled", "watermarked", "signed"]
    raw_id_fields = ["asset"]


@admin.register(Export)
class ExportAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "status", "layout", "campaign", "done", "total", "created_by"]
    list_filter = ["status", "layout"]
    list_select_related = ["campaign", "created_by"]


@admin.register(PostingSlot)
class PostingSlotAdmin(ReadOnlyAdmin):
    list_display = ["starts_at", "time_zone", "platform", "asset"]
    list_filter = ["platform"]
    raw_id_fields = ["asset"]
