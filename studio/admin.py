"""Admin views of API access and webhooks: read-only (tokens are made and revoked on the
account pages, which show a secret once; deliveries are the sender's record)."""

from __future__ import annotations

from django.contrib import admin

from studio.models import (
    ApiToken,
    LoginAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only services write (they validate, audit and alert): admins look, never add or
    edit. ``deletable`` keeps the delete action where removing a row is harmless."""

    deletable = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    deletable = True
    # Never the hash: the prefix tells tokens apart.
    list_display = ["name", "user", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    fields = list_display
    list_select_related = ["user"]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ReadOnlyAdmin):
    deletable = True
    list_display = ["url", "events", "active", "created_at"]
    exclude = ["secret"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    deletable = True
    list_display = ["type", "created_at"]
    list_filter = ["type"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    deletable = True
    list_display = ["event", "subscription", "status", "attempts", "last_status_code", "created_at"]
    list_filter = ["status"]
    list_select_related = ["event", "subscription"]


@admin.register(LoginAttempt)
class LoginAttemptAdmin(ReadOnlyAdmin):
    # The audit trail of failed and refused sign-ins (studio.login).
    list_display = ["created_at", "username", "ip", "outcome", "path"]
    list_filter = ["outcome"]
    search_fields = ["username", "ip"]
