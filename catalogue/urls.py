from __future__ import annotations

from django.urls import path

from catalogue import views

app_name = "catalogue"

# Included at the site root: the catalogue pages live under catalogue/, the login-protected
# image files under media/ (MEDIA_URL), both in this one namespace.
urlpatterns = [
    path("catalogue/", views.search, name="search"),
    path("catalogue/selection/tags/", views.selection_tags, name="selection_tags"),
    path("catalogue/selection/rights/", views.selection_rights, name="selection_rights"),
    path("catalogue/<uuid:pk>/", views.asset_detail, name="asset"),
    path("catalogue/<uuid:pk>/download/", views.asset_download, name="asset_download"),
    path("catalogue/<uuid:pk>/rights/", views.asset_rights, name="asset_rights"),
    path("media/<path:path>", views.media, name="media"),
]
