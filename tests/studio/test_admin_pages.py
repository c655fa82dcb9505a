"""Every model the admin shows has a list page and, for one row, a page that renders; the
service-written rows (ledger, API access, delivery) cannot be added or edited there."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from studio.models import ApiToken

READ_ONLY = {
    "generation.costentry",
    "generation.monthlybudget",
    "generation.budgetalert",
    "studio.apitoken",
    "studio.webhooksubscription",
    "studio.webhookevent",
    "studio.webhookdelivery",
    "catalogue.delivery",
    "catalogue.rendition",
    "catalogue.export",
    "catalogue.postingslot",
}


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-12345")
    client.force_login(user)
    return client, user


def test_every_admin_list_page_renders(superuser_client, asset):
    client, _ = superuser_client
    for model in admin.site._registry:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(url).status_code == 200, url


def test_service_written_rows_cannot_be_added_or_changed_in_the_admin(superuser_client, asset):
    client, user = superuser_client
    registered = {f"{m._meta.app_label}.{m._meta.model_name}" for m in admin.site._registry}
    assert READ_ONLY <= registered
    for name in READ_ONLY:
        app, model = name.split(".")
        assert client.get(reverse(f"admin:{app}_{model}_add")).status_code == 403, name
    token = ApiToken.objects.create(user=user, name="ci", prefix="st_abc", token_hash="0" * 64)
    page = client.get(reverse("admin:studio_apitoken_change", args=[token.pk]))
    assert page.status_code == 200
    assert "0" * 64 not in page.content.decode()
    assert (
        client.post(
            reverse("admin:studio_apitoken_change", args=[token.pk]), {"name": "x"}
        ).status_code
        == 403
    )
