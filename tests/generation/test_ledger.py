"""The cost ledger: what a generated image writes, attribution, idempotence, Item.cost as the
item's sum, totals for reports, the backfill of costs made before the ledger, and money."""

from __future__ import annotations

import importlib
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.utils import timezone

from generation.costs import image_charges, money
from generation.models import BaseModelVersion, CostEntry, Item
from generation.selectors import campaign_cost, cost_totals
from generation.services import (
    cost_record,
    item_charges_record,
    items_generate,
    lora_register,
    month_of,
    recipe_create,
)
from studio.errors import InputError
from tests.generation.conftest import campaign_jobs


@pytest.fixture
def lora(db, tmp_path):
    path = tmp_path / "detail.safetensors"
    path.write_bytes(b"not really weights, only hashed")
    return lora_register(name="detail", file=str(path))


def test_a_generated_image_writes_one_compute_entry_attributed_to_all_it_belongs_to(
    campaign, fake_backend, handoffs, settings
):
    settings.STUDIO_GPU_HOURLY_RATE = Decimal("1.80")
    job = campaign_jobs(campaign)[0]

    items_generate(item_ids=job)

    item = Item.objects.get(pk=job[0])
    (entry,) = CostEntry.objects.filter(item=item)
    assert (entry.kind, entry.unit, entry.currency) == ("compute", "gpu_second", "GBP")
    assert entry.quantity == Decimal("2")
    assert entry.rate == Decimal("0.0005")  # 1.80 an hour, per second
    assert entry.amount == Decimal("0.001")  # 2 s × 1.80 / 3600, exact
    assert entry.key == f"item:{item.pk}:attempt-1:generation"
    assert entry.detail["setting"] == "STUDIO_GPU_HOURLY_RATE"
    assert entry.month == month_of(timezone.now()) and entry.month.day == 1
    assert entry.campaign_id == campaign.pk
    assert entry.recipe_id == campaign.recipe_id
    assert entry.base_model_id == campaign.recipe.base_model_id
    assert entry.template_version_id == campaign.template_version_id
    assert entry.host == item.worker_host
    assert item.cost == entry.amount
    assert item.cost_detail["basis"] == "gpu_seconds"


def test_an_entry_pins_the_lora_versions_of_its_item(
    campaign, lora, fake_backend, handoffs, base_model, template_version, products_csv, creative
):
    from studio.launch import campaign_launch

    recipe = recipe_create(name="detailed", base_model=base_model, loras=[(lora, 0.7)])
    with_lora = campaign_launch(
        name="With a LoRA",
        template_version=template_version,
        recipe=recipe,
        csv_bytes=products_csv,
        user=creative,
    )
    job = campaign_jobs(with_lora)[0]

    items_generate(item_ids=job)

    entry = CostEntry.objects.filter(item_id=job[0]).get()
    assert entry.loras == ["detail:1"]
    assert entry.lora_versions == [lora.pk]
    assert entry.recipe_id == recipe.pk


def test_running_the_same_job_twice_records_each_image_once(campaign, fake_backend, handoffs):
    job = campaign_jobs(campaign)[0]

    items_generate(item_ids=job)
    items_generate(item_ids=job)

    assert fake_backend.calls == 1
    assert CostEntry.objects.filter(item_id__in=job).count() == len(job)


def test_the_same_key_is_written_once_and_item_cost_is_the_sum_of_its_entries(campaign):
    item = campaign.items.first()

    first = cost_record(
        key="k1", kind="api", quantity=3, unit="credit", rate="0.01", item_id=item.pk
    )
    again = cost_record(
        key="k1", kind="api", quantity=3, unit="credit", rate="0.01", item_id=item.pk
    )
    cost_record(
        key="k2", kind="review", quantity=60, unit="reviewer_second", rate="0.01", item_id=item.pk
    )

    assert first.amount == Decimal("0.03") and again is None
    item.refresh_from_db()
    assert item.cost == Decimal("0.63")
    assert CostEntry.objects.count() == 2


def test_a_second_attempt_is_a_cost_of_its_own(campaign):
    item = campaign.items.select_related("base_model").first()
    result = SimpleNamespace(duration_s=1.0, device="cpu", credits=None)
    charges = image_charges(item=item, result=result)

    item_charges_record(item=item, charges=charges, source="attempt-1")
    item_charges_record(item=item, charges=charges, source="attempt-1")
    item_charges_record(item=item, charges=charges, source="attempt-2")

    assert CostEntry.objects.filter(item=item).count() == 2
    item.refresh_from_db()
    assert item.cost == 2 * charges[0].amount


def test_a_base_models_fee_is_an_api_entry_beside_the_compute_entry(
    campaign, fake_backend, handoffs, base_model
):
    BaseModelVersion.objects.filter(pk=base_model.pk).update(cost_per_image=Decimal("0.004"))
    job = campaign_jobs(campaign)[0]

    items_generate(item_ids=job)

    kinds = dict(CostEntry.objects.filter(item_id=job[0]).values_list("detail__basis", "kind"))
    assert kinds == {"gpu_seconds": "compute", "model_fee": "api"}
    item = Item.objects.get(pk=job[0])
    assert item.cost_detail["model_fee"] == "0.00400"
    compute = (Decimal("2") * Decimal("1.20") / 3600).quantize(Decimal("1e-10"))
    assert item.cost == Decimal("0.004") + compute  # each entry exact to 10 places


def test_cpu_time_is_charged_at_the_cpu_rate_and_gpu_time_at_the_gpu_rate(campaign, settings):
    settings.STUDIO_CPU_HOURLY_RATE = Decimal("0.36")
    settings.STUDIO_GPU_HOURLY_RATE = Decimal("3.60")
    item = campaign.items.select_related("base_model").first()

    (cpu,) = image_charges(item=item, result=SimpleNamespace(duration_s=10.0, device="cpu"))
    (gpu,) = image_charges(
        item=item, result=SimpleNamespace(duration_s=10.0, device="cuda:0 NVIDIA H100")
    )

    assert (cpu.unit, cpu.amount, cpu.setting) == (
        "cpu_second",
        Decimal("0.001"),
        "STUDIO_CPU_HOURLY_RATE",
    )
    assert (gpu.unit, gpu.amount, gpu.setting) == (
        "gpu_second",
        Decimal("0.01"),
        "STUDIO_GPU_HOURLY_RATE",
    )


def test_stability_credits_and_automatic1111_images_are_api_charges(campaign, settings):
    settings.STUDIO_STABILITY_CREDIT_PRICE = Decimal("0.008")
    settings.STUDIO_A1111_IMAGE_RATE = Decimal("0.002")
    item = campaign.items.select_related("base_model").first()

    item.base_model.backend = "stability"
    (credits,) = image_charges(item=item, result=SimpleNamespace(credits=6.5, duration_s=3.0))
    item.base_model.backend = "automatic1111"
    (per_image,) = image_charges(item=item, result=SimpleNamespace(duration_s=3.0))

    assert (credits.kind, credits.quantity, credits.unit, credits.amount) == (
        "api",
        Decimal("6.5"),
        "credit",
        Decimal("0.052"),
    )
    assert (per_image.kind, per_image.unit, per_image.amount) == ("api", "image", Decimal("0.002"))


def test_a_bad_entry_is_refused_naming_the_field(campaign):
    item = campaign.items.first()

    with pytest.raises(InputError, match="kind: must be one of compute, api, storage, review"):
        cost_record(key="x", kind="lunch", quantity=1, unit="image", rate=1, item_id=item.pk)
    with pytest.raises(InputError, match="rate: must be a number at least 0"):
        cost_record(key="x", kind="api", quantity=1, unit="image", rate="-1", item_id=item.pk)
    assert not CostEntry.objects.exists()


def test_campaign_cost_reads_the_ledger_and_totals_group_for_reports(campaign, recipe):
    items = list(campaign.items.all()[:3])
    for n, item in enumerate(items):
        cost_record(
            key=f"c{n}", kind="compute", quantity=1, unit="gpu_second", rate="0.5", item_id=item.pk
        )
    cost_record(
        key="r0",
        kind="review",
        quantity=30,
        unit="reviewer_second",
        rate="0.01",
        item_id=items[0].pk,
    )

    assert campaign_cost(campaign=campaign) == Decimal("1.8")
    by_kind = {row["kind"]: row["amount"] for row in cost_totals(by=("campaign", "kind"))}
    assert by_kind == {"compute": Decimal("1.5"), "review": Decimal("0.3")}
    (row,) = cost_totals(by=("month", "recipe", "combination", "template_version"))
    assert row["recipe_id"] == recipe.pk and row["loras"] == [] and row["entries"] == 4
    assert row["amount"] == Decimal("1.8")
    with pytest.raises(InputError, match="by: colour: not one of"):
        cost_totals(by=("colour",))


def test_costs_recorded_before_the_ledger_are_moved_into_it_by_the_migration(campaign):
    migration = importlib.import_module("generation.migrations.0004_cost_ledger_and_budgets")
    gpu, a1111 = list(campaign.items.all()[:2])
    Item.objects.filter(pk=gpu.pk).update(
        cost=Decimal("0.0105"),
        cost_detail={"basis": "gpu_seconds", "seconds": 30.0, "model_fee": "0.0005"},
        generated_at=timezone.now(),
    )
    Item.objects.filter(pk=a1111.pk).update(
        cost=Decimal("0.002"), cost_detail={"basis": "per_image", "image_rate": "0.002"}
    )

    migration.ledger_from_item_costs(apps, None)
    migration.ledger_from_item_costs(apps, None)  # again: nothing twice

    entries = {e.key: e for e in CostEntry.objects.all()}
    assert set(entries) == {
        f"item:{gpu.pk}:backfill:generation",
        f"item:{gpu.pk}:backfill:model_fee",
        f"item:{a1111.pk}:backfill:generation",
    }
    assert entries[f"item:{gpu.pk}:backfill:generation"].amount == Decimal("0.01")
    assert entries[f"item:{gpu.pk}:backfill:generation"].quantity == Decimal("30")
    assert entries[f"item:{a1111.pk}:backfill:generation"].kind == "api"
    assert campaign_cost(campaign=campaign) == Decimal("0.0125")


@pytest.mark.parametrize(
    ("amount", "places", "shown"),
    [
        (Decimal("1234.505"), 2, "£1,234.51"),
        (Decimal("0.0125"), 4, "£0.0125"),
        (Decimal("0.00005"), 4, "£0.0001"),
        (Decimal("-3.2"), 2, "-£3.20"),
        (None, 2, "—"),
    ],
)
def test_money_is_rounded_half_up_only_when_it_is_shown(amount, places, shown):
    assert money(amount, places) == shown


def test_money_shows_another_currency_by_its_code(settings):
    settings.STUDIO_CURRENCY = "CHF"
    assert money(Decimal("12"), 2) == "CHF 12.00"
