"""The registry in the Django admin: adding versions, rolling back with "Activate this
version", and the History page that records who did which."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from generation import services
from generation.hashing import check_sha256
from generation.models import BaseModelVersion, LoraVersion, PromptTemplateVersion, Recipe
from generation.sizes import check_size
from studio.errors import InputError
from studio.services import user_role_grant

A_SHA = "ab" * 32


@pytest.fixture
def staff_client(client, admin_user):
    # The admin role is what opens the Django admin (is_staff), as `role_grant` gives it.
    user_role_grant(user=admin_user, role="admin")
    client.force_login(admin_user)
    return client


@pytest.fixture
def lora(tmp_path):
    path = tmp_path / "style.safetensors"
    path.write_bytes(b"not really weights")
    return services.lora_register(name="style", file=str(path))


def recipe_add_data(base_model, **overrides) -> dict:
    data = {
        "name": "catalogue",
        "purpose": "variation",
        "base_model": str(base_model.pk),
        "steps": "20",
        "guidance_scale": "6.5",
        "width": "512",
        "height": "768",
        "scheduler": "",
        "activate": "on",
        "loras-TOTAL_FORMS": "0",
        "loras-INITIAL_FORMS": "0",
    }
    return data | overrides


def history(client, obj) -> str:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[obj.pk])
    return client.get(url).content.decode()


def entries(obj) -> list[tuple[int, str]]:
    found = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
    ).order_by("pk")
    return [(entry.action_flag, entry.get_change_message()) for entry in found]


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def activate_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_activate", args=[obj.pk])


# --- Adding a version ---------------------------------------------------------------------


def test_adding_an_active_recipe_version_retires_the_old_one_instead_of_a_constraint_error(
    staff_client, recipe
):
    response = staff_client.post(
        reverse("admin:generation_recipe_add"), recipe_add_data(recipe.base_model)
    )

    recipe.refresh_from_db()
    added = Recipe.objects.get(name="catalogue", version=2)
    assert response.status_code == 302, response.content.decode()
    assert (added.is_active, added.steps, added.width, added.height) == (True, 20, 512, 768)
    assert not recipe.is_active
    assert entries(added) == [(ADDITION, "Added v2"), (CHANGE, "Activated v2 (was v1)")]
    assert entries(recipe) == [(CHANGE, "Retired v1 (v2 activated)")]


def test_a_recipe_version_added_inactive_leaves_the_active_one_alone(staff_client, recipe):
    data = recipe_add_data(recipe.base_model)
    del data["activate"]

    response = staff_client.post(reverse("admin:generation_recipe_add"), data)

    recipe.refresh_from_db()
    assert response.status_code == 302
    assert not Recipe.objects.get(name="catalogue", version=2).is_active
    assert recipe.is_active


def test_an_added_recipe_keeps_its_inline_loras_in_their_order(staff_client, base_model, lora):
    other = services.lora_register(name="detail", file=lora.file)
    data = recipe_add_data(
        base_model,
        name="hero",
        **{
            "loras-TOTAL_FORMS": "2",
            "loras-0-lora": str(lora.pk),
            "loras-0-weight": "0.5",
            "loras-0-position": "1",
            "loras-1-lora": str(other.pk),
            "loras-1-weight": "0.8",
            "loras-1-position": "0",
        },
    )

    response = staff_client.post(reverse("admin:generation_recipe_add"), data)

    hero = Recipe.objects.get(name="hero")
    assert response.status_code == 302, response.content.decode()
    assert [(rl.lora_id, rl.weight) for rl in hero.loras.all()] == [
        (other.pk, 0.8),
        (lora.pk, 0.5),
    ]


def test_the_admin_refuses_a_recipe_size_the_model_cannot_generate(staff_client, recipe):
    response = staff_client.post(
        reverse("admin:generation_recipe_add"), recipe_add_data(recipe.base_model, width="500")
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "width 500 is not a multiple of 8" in page
    assert Recipe.objects.filter(name="catalogue").count() == 1


def test_an_unused_recipe_keeps_its_name_when_edited_so_no_constraint_can_break(
    staff_client, recipe
):
    other = services.recipe_create(name="other", base_model=recipe.base_model)
    data = recipe_add_data(recipe.base_model, name="catalogue", steps="9")
    del data["activate"]

    response = staff_client.post(reverse("admin:generation_recipe_change", args=[other.pk]), data)

    other.refresh_from_db()
    assert response.status_code == 302, response.content.decode()
    assert (other.name, other.steps, other.is_active) == ("other", 9, True)


def test_adding_a_base_model_in_the_admin_records_the_addition_and_the_activation(
    staff_client, base_model
):
    response = staff_client.post(
        reverse("admin:generation_basemodelversion_add"),
        {
            "name": "sd15",
            "backend": "diffusers",
            "source": "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "cost_per_image": "0",
            "notes": "",
        },
    )

    added = BaseModelVersion.objects.get(name="sd15", version=2)
    assert response.status_code == 302
    page = history(staff_client, added)
    assert "Added v2" in page
    assert "Activated v2 (was v1)" in page
    assert "ada" in page
    # The service's entries only: no bare "Added." from the admin besides them.
    assert entries(added) == [(ADDITION, "Added v2"), (CHANGE, "Activated v2 (was v1)")]
    assert "Retired v1 (v2 activated)" in history(staff_client, base_model)


def test_the_admin_refuses_a_malformed_checkpoint_hash(staff_client):
    response = staff_client.post(
        reverse("admin:generation_basemodelversion_add"),
        {
            "name": "dreamshaper",
            "backend": "automatic1111",
            "source": "dreamshaper_8",
            "sha256": "not-a-hash",
            "cost_per_image": "0",
            "notes": "",
        },
    )

    assert response.status_code == 200
    assert "give the 64 hex digits" in response.content.decode()
    assert not BaseModelVersion.objects.filter(name="dreamshaper").exists()


# --- Rolling back -------------------------------------------------------------------------


def test_activate_this_version_rolls_a_recipe_back_in_one_action(staff_client, recipe):
    newer = services.recipe_create(name="catalogue", base_model=recipe.base_model, steps=9)
    change_page = staff_client.get(reverse("admin:generation_recipe_change", args=[recipe.pk]))
    assert "Activate this version" in change_page.content.decode()

    response = staff_client.post(activate_url(recipe))

    recipe.refresh_from_db()
    newer.refresh_from_db()
    assert response.status_code == 302
    assert response.url == reverse("admin:generation_recipe_change", args=[recipe.pk])
    assert (recipe.is_active, newer.is_active) == (True, False)
    assert Recipe.objects.filter(name="catalogue").count() == 2
    assert "Activated v1 (was v2)" in history(staff_client, recipe)
    assert "Retired v2 (v1 activated)" in history(staff_client, newer)


def test_the_active_version_offers_no_activate_button(staff_client, recipe):
    page = staff_client.get(reverse("admin:generation_recipe_change", args=[recipe.pk]))

    assert "Activate this version" not in page.content.decode()


def test_activating_is_post_only(staff_client, recipe):
    services.recipe_create(name="catalogue", base_model=recipe.base_model, steps=9)

    response = staff_client.get(activate_url(recipe))

    recipe.refresh_from_db()
    assert response.status_code == 405
    assert not recipe.is_active


def test_activating_needs_the_admin(client, creative, recipe):
    services.recipe_create(name="catalogue", base_model=recipe.base_model, steps=9)
    client.force_login(creative)

    client.post(activate_url(recipe))

    recipe.refresh_from_db()
    assert not recipe.is_active


def test_activating_needs_the_permission_to_change_the_version(client, django_user_model, recipe):
    services.recipe_create(name="catalogue", base_model=recipe.base_model, steps=9)
    viewer = django_user_model.objects.create_user("vera", password="pw-1-vera", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_recipe"))
    client.force_login(viewer)

    response = client.post(activate_url(recipe))

    recipe.refresh_from_db()
    assert response.status_code == 403
    assert not recipe.is_active


def test_the_changelist_action_activates_the_selected_versions(staff_client, base_model):
    newer = services.base_model_register(name="sd15", source="another/checkpoint")
    other = services.base_model_register(name="sdxl", source="stabilityai/sdxl", activate=False)
    changelist = reverse("admin:generation_basemodelversion_changelist")

    response = staff_client.post(
        changelist,
        {"action": "activate_selected", "_selected_action": [base_model.pk, other.pk]},
        follow=True,
    )

    assert shown_messages(response) == [
        "sd15 v1 is now the active version.",
        "sdxl v1 is now the active version.",
    ]
    assert set(BaseModelVersion.objects.filter(is_active=True)) == {base_model, other}
    assert not BaseModelVersion.objects.get(pk=newer.pk).is_active


def test_the_changelist_action_activates_one_version_per_name(staff_client, base_model):
    newer = services.base_model_register(name="sd15", source="another/checkpoint")

    response = staff_client.post(
        reverse("admin:generation_basemodelversion_changelist"),
        {"action": "activate_selected", "_selected_action": [base_model.pk, newer.pk]},
        follow=True,
    )

    assert shown_messages(response) == [
        "sd15 v2 is already the active version.",
        "Skipped sd15 v1: pick one version per name.",
    ]
    assert BaseModelVersion.objects.get(is_active=True) == newer


def test_a_lora_is_rolled_back_from_its_page(staff_client, lora, tmp_path):
    changed = tmp_path / "style-2.safetensors"
    changed.write_bytes(b"retrained")
    newer = services.lora_register(name="style", file=str(changed))

    staff_client.post(activate_url(lora))

    lora.refresh_from_db()
    assert lora.is_active
    assert not LoraVersion.objects.get(pk=newer.pk).is_active


def test_a_prompt_template_is_rolled_back_without_retyping_it(staff_client, template_version):
    template = template_version.template
    change_url = reverse("admin:generation_prompttemplate_change", args=[template.pk])
    for body in ("a {color} {product_type}", "a {material} {product_type}"):
        staff_client.post(
            change_url,
            {
                "description": "",
                "body": body,
                "negative_prompt": "",
                "versions-TOTAL_FORMS": "0",
                "versions-INITIAL_FORMS": "0",
            },
        )
    assert template.active_version().version == 3
    page = staff_client.get(change_url).content.decode()
    assert "Activate this version" in page
    assert f'<option value="{template_version.pk}">v1</option>' in page

    response = staff_client.post(activate_url(template), {"version": template_version.pk})

    assert response.status_code == 302
    assert template.active_version().pk == template_version.pk
    assert template.versions.count() == 3
    page = history(staff_client, template)
    assert "Added v3" in page
    assert "Activated v1 (was v3)" in page


def test_a_template_is_not_rolled_back_to_another_templates_version(staff_client, template_version):
    other = services.prompt_template_version_create(name="other", body="a {name}")
    services.prompt_template_version_create(name="other", body="the {name}")
    template = template_version.template

    response = staff_client.post(activate_url(template), {"version": other.pk}, follow=True)

    assert shown_messages(response) == ["Pick a version of this template."]
    assert not PromptTemplateVersion.objects.get(pk=other.pk).is_active
    assert template.active_version().pk == template_version.pk


# --- The services behind it ---------------------------------------------------------------


def test_activation_is_recorded_only_when_someone_is_named(admin_user, template_version):
    v2 = services.prompt_template_version_create(name="product-photo", body="a {name}")
    assert not LogEntry.objects.exists()  # created without a user: nobody to name

    services.prompt_template_version_activate(version=template_version, user=admin_user)
    services.prompt_template_version_activate(version=template_version, user=admin_user)

    (entry,) = LogEntry.objects.all()
    assert (entry.user, entry.object_id, entry.get_change_message()) == (
        admin_user,
        str(template_version.template_id),
        "Activated v1 (was v2)",
    )
    assert not PromptTemplateVersion.objects.get(pk=v2.pk).is_active


def test_each_activate_service_keeps_one_active_version_per_name(admin_user, recipe):
    newer = services.recipe_create(name="catalogue", base_model=recipe.base_model, steps=9)
    other = services.recipe_create(name="other", base_model=recipe.base_model)

    services.recipe_activate(version=recipe, user=admin_user)

    assert set(Recipe.objects.filter(is_active=True)) == {recipe, other}
    assert not Recipe.objects.get(pk=newer.pk).is_active


@pytest.mark.parametrize(
    ("value", "stored"),
    [("", ""), (A_SHA.upper(), A_SHA), (" abcdef0123 ", "abcdef0123")],
)
def test_a_pinned_hash_is_stored_lowercased(value, stored):
    assert check_sha256(value) == stored


@pytest.mark.parametrize("value", ["abc", "g" * 64, "a" * 63, "a" * 11])
def test_a_malformed_hash_is_refused_on_its_field(value):
    with pytest.raises(InputError) as exc:
        check_sha256(value, field="model_hash")

    assert exc.value.fields == {"model_hash"}


@pytest.mark.parametrize(
    ("width", "height", "problem"),
    [(500, 512, "width 500 is not a multiple of 8"), (512, 4096, "height 4096 is outside")],
)
def test_a_size_the_model_cannot_generate_is_refused(width, height, problem):
    with pytest.raises(InputError) as exc:
        check_size(width, height, field="size")

    assert problem in str(exc.value)
    check_size(64, 2048, field="size")
