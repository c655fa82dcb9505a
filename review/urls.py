from __future__ import annotations

from django.urls import path

from review import views

app_name = "review"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("grid/", views.grid, name="grid"),
    path("grid/decide/", views.grid_decide, name="grid_decide"),
    path("undo/", views.undo, name="undo"),
    path("stats/", views.stats, name="stats"),
    path("<uuid:pk>/decide/", views.decide, name="decide"),
    path("<uuid:pk>/skip/", views.skip, name="skip"),
    path("items/<uuid:pk>/send-back/", views.send_back, name="send_back"),
    path("campaigns/<uuid:pk>/calibrate/", views.calibrate, name="calibrate"),
    path("campaigns/<uuid:pk>/references/", views.references, name="references"),
]
