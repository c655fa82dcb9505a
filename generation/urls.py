from __future__ import annotations

from django.urls import path

from generation import views

app_name = "generation"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("campaigns/<uuid:pk>/", views.campaign_detail, name="campaign"),
    path("campaigns/<uuid:pk>/priority/", views.campaign_priority, name="campaign_priority"),
    path("campaigns/<uuid:pk>/budget/", views.campaign_budget, name="campaign_budget"),
    path("campaigns/<uuid:pk>/promote/", views.campaign_promote, name="campaign_promote"),
    path("budgets/", views.budgets, name="budgets"),
    path("campaigns/<uuid:pk>/<slug:action>/", views.campaign_action, name="campaign_action"),
]
