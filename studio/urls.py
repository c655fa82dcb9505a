from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from generation import urls as generation_urls
from studio import account, health, login, metrics, views
from studio.api import api

# Launching a campaign spans generation and review, so its pages are wired here, under the
# generation namespace with the other campaign pages.
generation_patterns = [
    path("campaigns/new/", views.campaign_create, name="campaign_create"),
    path("campaigns/new/preview/", views.campaign_preview, name="campaign_preview"),
    path("campaigns/samples/<str:name>", views.sample_csv, name="sample_csv"),
    path("campaigns/<uuid:pk>/trial/", views.campaign_trial, name="campaign_trial"),
    *generation_urls.urlpatterns,
]

admin.site.site_header = "Studio administration"
admin.site.site_title = "Studio admin"
# The admin's sign-in is throttled and audited like the site's (studio.login).
admin.site.login_form = login.ThrottledAdminAuthenticationForm

urlpatterns = [
    path("", include((generation_patterns, generation_urls.app_name))),
    path("review/", include("review.urls")),
    path("", include("catalogue.urls")),
    path("reports/", include("catalogue.reports.urls")),
    path("accounts/login/", login.LoginView.as_view(), name="login"),
    # For load balancers and Prometheus (README "Health and metrics").
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", api.urls),
    path("account/api/", account.api_access, name="api_access"),
    path("account/api/tokens/", account.token_new, name="token_new"),
    path("account/api/tokens/<int:pk>/revoke/", account.token_revoke, name="token_revoke"),
    path("account/api/webhooks/", account.webhook_new, name="webhook_new"),
    path("account/api/webhooks/<uuid:pk>/", account.webhook_detail, name="webhook_detail"),
    path("account/api/webhooks/<uuid:pk>/toggle/", account.webhook_toggle, name="webhook_toggle"),
    path("account/api/webhooks/<uuid:pk>/delete/", account.webhook_delete, name="webhook_delete"),
    path(
        "account/api/webhooks/<uuid:pk>/deliveries/<uuid:delivery_pk>/redeliver/",
        account.webhook_redeliver,
        name="webhook_redeliver",
    ),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
]
