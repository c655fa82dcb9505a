"""Admin for quality policies (editable) and the scoring/review records (read-only audit)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from review.models import (
    QualityPolicy,
    QualityResult,
    ReferenceImage,
    ReviewDecision,
    ReviewTask,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class QualityPolicyForm(forms.ModelForm):
    class Meta:
        model = QualityPolicy
        fields = [
            "campaign",
            "approve_at",
            "reject_below",
            "weights",
            "unwanted_concepts",
            "tag_vocabulary",
            "content_rules",
        ]

    def clean_content_rules(self):
        from review.quality.content import check_content_rules
        from studio.errors import InputError

        try:
            return check_content_rules(self.cleaned_data["content_rules"])
        except InputError as exc:
            raise forms.ValidationError(exc.errors[0].message) from None


@admin.register(QualityPolicy)
class QualityPolicyAdmin(admin.ModelAdmin):
    form = QualityPolicyForm
    list_display = ["campaign", "approve_at", "reject_below", "unwanted_concepts", "updated_at"]
    search_fields = ["campaign__name"]
    raw_id_fields = ["campaign"]
    readonly_fields = ["updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # A policy belongs to its campaign for life; only the thresholds and weights change.
        return ["campaign", "updated_at"] if obj else ["updated_at"]

    def has_add_permission(self, request) -> bool:
        return False  # campaign_submit creates one per campaign


@admin.register(QualityResult)
class QualityResultAdmin(ReadOnlyAdmin):
    list_display = ["item", "overall", "verdict", "reason_codes", "phash", "created_at"]
    list_filter = ["verdict", "hard_fail", "screen"]
    search_fields = ["=item__id", "item__campaign__name"]
    list_select_related = ["item__campaign"]


class ReviewDecisionInline(admin.TabularInline):
    model = ReviewDecision
    extra = 0
    can_delete = False
    readonly_fields = [
        "reviewer",
        "action",
        "decision",
        "reason_code",
        "reason",
        "automatic_verdict",
        "created_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReviewTask)
class ReviewTaskAdmin(ReadOnlyAdmin):
    list_display = [
        "item",
        "campaign",
        "status",
        "claimed_by",
        "lease_until",
        "decision",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status", "decision", "reason_code"]
    search_fields = ["=item__id", "campaign__name", "reason"]
    list_select_related = ["item__campaign", "campaign", "claimed_by", "decided_by"]
    inlines = [ReviewDecisionInline]


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(ReadOnlyAdmin):
    list_display = ["task", "reviewer", "action", "decision", "reason_code", "reason", "created_at"]
    list_filter = ["action", "decision", "reason_code"]
    search_fields = ["reason", "reviewer__username"]
    list_select_related = ["task", "reviewer"]
    date_hierarchy = "created_at"


@admin.register(ReferenceImage)
class ReferenceImageAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "phash", "uploaded_by", "created_at"]
    search_fields = ["campaign__name"]
    list_select_related = ["campaign", "uploaded_by"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return True  # a wrong reference may be removed; the upload page adds them
