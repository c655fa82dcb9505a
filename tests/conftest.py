"""Shared personas and small factories. Tests use the real PostgreSQL and Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from studio import roles

REPO = Path(__file__).resolve().parent.parent
# The sample CSVs the product ships (also offered on the New campaign page): a clone alone
# in an empty folder has everything the suite reads.
FIXTURES = REPO / "generation" / "demo_data"

PRODUCT_TEMPLATE = (
    "studio product photo of a {color} {material} {product_type}, {name}, "
    "on a plain white background"
)


def fixture_csv(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_user(username: str, *role_names: str, password: str = "pw-for-tests-1") -> User:
    user = User.objects.create_user(username=username, password=password)
    for role in role_names:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return user


@pytest.fixture
def creative(db) -> User:
    return make_user("cara", roles.CREATIVE)


@pytest.fixture
def reviewer(db) -> User:
    return make_user("rui", roles.REVIEWER)


@pytest.fixture
def second_reviewer(db) -> User:
    return make_user("rita", roles.REVIEWER)


@pytest.fixture
def manager(db) -> User:
    return make_user("mona", roles.MANAGER)


@pytest.fixture
def admin_user(db) -> User:
    return make_user("ada", roles.ADMIN)


@pytest.fixture
def outsider(db) -> User:
    return make_user("otto")


def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def creative_client(client, creative):
    return logged_in(client, creative)


@pytest.fixture
def reviewer_client(client, reviewer):
    return logged_in(client, reviewer)


@pytest.fixture
def manager_client(client, manager):
    return logged_in(client, manager)


@pytest.fixture
def template_version(db):
    from generation.services import prompt_template_version_create

    return prompt_template_version_create(
        name="product-photo", body=PRODUCT_TEMPLATE, negative_prompt="blurry, text"
    )


@pytest.fixture
def base_model(db):
    from generation.services import base_model_register

    # A hub id: nothing local to hash. Generation tests register the tiny model instead.
    return base_model_register(name="sd15", source="runwayml/stable-diffusion-v1-5")


@pytest.fixture
def recipe(base_model):
    from generation.services import recipe_create

    return recipe_create(name="catalogue", base_model=base_model, steps=2, width=64, height=64)


@pytest.fixture
def products_csv() -> bytes:
    return fixture_csv("products.csv")


@pytest.fixture
def campaign(creative, template_version, recipe, products_csv):
    from studio.launch import campaign_launch

    return campaign_launch(
        name="Spring shoes",
        template_version=template_version,
        recipe=recipe,
        csv_bytes=products_csv,
        csv_filename="products.csv",
        variations=2,
        user=creative,
        base_seed=42,
    )


@pytest.fixture
def redis_queues(settings):
    """Empty the test Redis database (its own number, see pyproject) around a test."""
    import django_rq

    connection = django_rq.get_connection("generation")
    connection.flushdb()
    yield {name: django_rq.get_queue(name) for name in ("generation", "quality", "delivery")}
    connection.flushdb()


def textured_png(seed: int = 0, size: int = 64) -> bytes:
    """A sharp, well-exposed test image (checkerboard with a gradient)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    board = ((x // 8 + y // 8) % 2) * 120 + 60
    rgb = np.stack([board, (x * 255 // size), (y * 255 // size)], axis=-1)
    rgb = np.clip(rgb + rng.integers(-10, 10, rgb.shape), 0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def item_as_generated(item, png: bytes | None = None):
    """Put an item where the generation job leaves it (image stored, status scoring)."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from generation.models import Item

    name = default_storage.save(
        f"items/{item.campaign_id}/{item.pk}.png", ContentFile(png or textured_png(item.seed))
    )
    Item.objects.filter(pk=item.pk).update(status=Item.Status.SCORING, image=name)
    item.refresh_from_db()
    return item


def route_items(campaign, *, to: str, count: int = 1) -> list:
    """Score `count` items of the campaign with a policy that sends them all `to` a verdict."""
    from generation.models import Item
    from review.models import QualityPolicy
    from review.services import item_score

    thresholds = {"approved": (0.0, 0.0), "review": (1.0, 0.0), "rejected": (1.0, 1.0)}[to]
    QualityPolicy.objects.filter(campaign=campaign).update(
        approve_at=thresholds[0], reject_below=thresholds[1]
    )
    items = list(campaign.items.filter(status=Item.Status.QUEUED)[:count])
    for item in items:
        item_as_generated(item)
        item_score(item_id=item.pk)
        item.refresh_from_db()
    return items


@pytest.fixture
def stages_inline(monkeypatch, django_capture_on_commit_callbacks):
    """Every hand-off to a stage runs its job at once, in this process, as a worker would
    after the commit (studio.queues is the one seam); the block's on_commit callbacks run."""
    from importlib import import_module

    from studio import queues

    def push(spec, jobs, **_):
        module, _, name = spec.job.rpartition(".")
        for job in jobs:
            getattr(import_module(module), name)(job.ids)

    monkeypatch.setattr(queues, "_push", push)
    return lambda: django_capture_on_commit_callbacks(execute=True)


def blur_rejections(campaign, reviewer) -> tuple[list, object]:
    """Three images rejected automatically (the first for blur, the others for exposure) and
    one a reviewer rejected for blur: (the automatic ones, the reviewer's task)."""
    from review.models import QualityResult
    from review.services import review_task_claim_next, review_task_decide

    rejected = route_items(campaign, to="rejected", count=3)
    QualityResult.objects.filter(item=rejected[0]).update(reason_codes=["blur"])
    QualityResult.objects.filter(item__in=rejected[1:]).update(reason_codes=["exposure"])
    route_items(campaign, to="review", count=1)
    task = review_task_claim_next(user=reviewer)
    review_task_decide(
        task_id=task.pk,
        user=reviewer,
        token=task.lease_token,
        decision="rejected",
        reason_code="blur",
    )
    return rejected, task


@pytest.fixture
def handoffs(monkeypatch):
    """What was handed to a stage after commit, as (job, ids), instead of reaching Redis."""
    from studio import queues

    pushed: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(
        queues, "_push", lambda spec, jobs, **_: pushed.extend((spec.job, j.ids) for j in jobs)
    )
    return pushed


@pytest.fixture(autouse=True)
def _kept_answers_forgotten():
    """Kept tokens and search answers (studio.freshness) from an earlier test name rows that
    test's rollback took away; a rollback moves no stamp, so each test starts by moving them."""
    from studio import freshness

    freshness.forget_all()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(scope="session")
def _c2pa_session_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("c2pa")


@pytest.fixture(autouse=True)
def _c2pa_dir(settings, _c2pa_session_dir):
    # The local signing CA is made once per test session, never in the repository's var/.
    settings.STUDIO_C2PA_DIR = _c2pa_session_dir


@pytest.fixture
def review_items(campaign):
    return route_items(campaign, to="review", count=3)


@pytest.fixture
def asset(campaign):
    from catalogue.services import asset_publish

    (item,) = route_items(campaign, to="approved", count=1)
    return asset_publish(item_id=item.pk)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A folder holding the tiny random-weight model and LoRAs, built once per session."""
    from generation.demo import ensure_tiny_model

    directory = tmp_path_factory.mktemp("models")
    ensure_tiny_model(directory / "tiny")
    return directory
