from __future__ import annotations

from django.urls import path

from catalogue.reports import views

app_name = "reports"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("campaigns/", views.campaigns, name="campaigns"),
    path("campaigns/<uuid:pk>/value/", views.campaign_value, name="campaign_value"),
    path("recipes/", views.recipes, name="recipes"),
    path("prompts/", views.prompts, name="prompts"),
    path("hosting/", views.hosting, name="hosting"),
    path("versions/", views.versions, name="versions"),
    path(
        "versions/<str:kind>/<int:pk>/activate/",
        views.version_activate_view,
        name="version_activate",
    ),
]
