from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from generation import urls as generation_urls
from studio import views

# Launching a campaign spans generation and review, so its pages are wired here, under the
# generation namespace with the other campaign pages.
generation_patterns = [
    path("campaigns/new/", views.campaign_create, name="campaign_create"),
    path("campaigns/new/preview/", views.campaign_preview, name="campaign_preview"),
    path("campaigns/samples/<str:name>", views.sample_csv, name="sample_csv"),
    *generation_urls.urlpatterns,
]

admin.site.site_header = "Studio administration"
admin.site.site_title = "Studio admin"

urlpatterns = [
    path("", include((generation_patterns, generation_urls.app_name))),
    path("review/", include("review.urls")),
    path("", include("catalogue.urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
]
