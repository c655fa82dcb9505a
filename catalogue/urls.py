from __future__ import annotations

from django.urls import path

from catalogue import views
from catalogue.delivery import export_views, schedule_views
from catalogue.delivery import views as delivery_views

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
    path("catalogue/campaigns/<uuid:pk>/schedule/", schedule_views.schedule, name="schedule"),
    path(
        "catalogue/campaigns/<uuid:pk>/schedule/add/",
        schedule_views.schedule_add,
        name="schedule_add",
    ),
    path(
        "catalogue/campaigns/<uuid:pk>/schedule/<uuid:slot_pk>/delete/",
        schedule_views.schedule_delete,
        name="schedule_delete",
    ),
    path(
        "catalogue/campaigns/<uuid:pk>/schedule/schedule.csv",
        schedule_views.schedule_csv_download,
        name="schedule_csv",
    ),
    path(
        "catalogue/campaigns/<uuid:pk>/schedule/schedule.ics",
        schedule_views.schedule_ics_download,
        name="schedule_ics",
    ),
    path("catalogue/campaigns/<uuid:pk>/delivery/", delivery_views.delivery, name="delivery"),
    path(
        "catalogue/renditions/<uuid:pk>/download/",
        delivery_views.rendition_download,
        name="rendition_download",
    ),
    path("catalogue/exports/", export_views.exports, name="exports"),
    path("catalogue/exports/new/", export_views.export_new, name="export_new"),
    path("catalogue/exports/<uuid:pk>/", export_views.export_detail, name="export"),
    path(
        "catalogue/exports/<uuid:pk>/download/",
        export_views.export_download,
        name="export_download",
    ),
    path("media/<path:path>", views.media, name="media"),
]
