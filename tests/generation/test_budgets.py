"""Budgets: amounts, estimates, the pause at a cap (also under two concurrent workers),
resuming, alerts by e-mail and on the pages, the monthly budget, and the pages for them."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.urls import reverse

from generation.models import BudgetAlert, Campaign, CostEntry, Item, MonthlyBudget
from generation.services import (
    budget_amount_check,
    campaign_budget_set,
    campaign_control,
    campaign_plan,
    campaign_spend,
    campaign_submit,
    cost_record,
    items_generate,
    month_budget_set,
    month_of,
    month_parse,
)
from generation.services import budgets as budget_service
from generation.services.budgets import campaign_estimate, expected_cost
from studio.errors import InputError
from tests.conftest import make_user
from tests.generation.conftest import campaign_jobs

HTMX = {"HTTP_HX_REQUEST": "true"}


def spend_on(campaign, amount: str, key: str = "earlier") -> None:
    """Money the campaign spent already (a ledger entry of its own)."""
    cost_record(key=key, kind="api", quantity=1, unit="image", rate=amount, campaign_id=campaign.pk)


def run_job(campaign, index: int = 0) -> int:
    return items_generate(item_ids=campaign_jobs(campaign)[index])


# --- amounts and months --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "amount"), [("250", "250.00"), ("0.01", "0.01"), ("12.50", "12.50")]
)
def test_a_budget_amount_is_a_positive_sum_in_pennies(value, amount):
    assert budget_amount_check(value, field="cap") == Decimal(amount)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "cap: must be more than 0"),
        ("-5", "cap: must be more than 0"),
        ("1.005", "cap: at most two decimal places (GBP)"),
        ("ten", "cap: expected an amount such as 250.00"),
        ("NaN", "cap: expected an amount such as 250.00"),
        ("1e3", "cap: expected an amount such as 250.00"),
        ("", "cap: expected an amount such as 250.00"),
        ("1000000.01", "cap: at most £1,000,000.00 (STUDIO_BUDGET_MAX)"),
    ],
)
def test_a_bad_budget_amount_is_refused_naming_the_field(value, message):
    with pytest.raises(InputError) as error:
        budget_amount_check(value, field="cap")
    assert str(error.value).startswith(message)


def test_a_month_is_read_as_yyyy_mm():
    assert month_parse("2025-06").isoformat() == "2025-06-01"
    for bad in ("2025-13", "2025-6", "June", ""):
        with pytest.raises(InputError, match="month: expected a month as YYYY-MM"):
            month_parse(bad)


# --- estimates -------------------------------------------------------------------------------


def test_without_history_an_image_is_expected_to_cost_the_configured_rates(
    recipe, priced, settings
):
    settings.STUDIO_ESTIMATE_SECONDS_PER_STEP = 0.5
    expected = expected_cost(recipe=recipe)

    assert expected.per_image == Decimal("0.10")
    assert expected.images == 0 and expected.basis == "the configured rates"
    assert expected.seconds == pytest.approx(0.5 * 2 * 64 * 64 / (512 * 512))


def test_with_history_an_image_is_expected_to_cost_what_the_recipes_images_cost(campaign, recipe):
    items = list(campaign.items.all()[:2])
    for n, (item, rate) in enumerate(zip(items, ("0.20", "0.40"), strict=True)):
        cost_record(key=f"h{n}", kind="api", quantity=1, unit="image", rate=rate, item_id=item.pk)
    cost_record(key="rev", kind="review", quantity=1, unit="image", rate="5", item_id=items[0].pk)

    expected = expected_cost(recipe=recipe)

    assert expected.per_image == Decimal("0.30")  # generation charges only, not review
    assert expected.basis == "the last 2 images of this recipe"


def test_an_estimate_is_images_times_the_expected_cost_against_the_cap_and_the_month(
    recipe, template_version, products_csv, priced
):
    month_budget_set(month=month_of(), amount="3.00")
    plan = campaign_plan(
        template_version=template_version, recipe=recipe, csv_bytes=products_csv, variations=2
    )

    estimate = campaign_estimate(plan=plan, cap=Decimal("2.00"))

    assert estimate.images == 40
    assert estimate.total == Decimal("4.00")
    assert estimate.over_cap and estimate.over_month
    assert estimate.problems() == [
        "the estimate of £4.00 is over the campaign cap of £2.00",
        "the estimate of £4.00 is over what is left of this month's budget (£3.00 of £3.00)",
    ]


def test_the_expected_time_comes_from_recent_throughput(campaign, recipe):
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now() - timedelta(minutes=10)
    items = list(campaign.items.all()[:20])
    for n, item in enumerate(items):  # 20 images in 40 busy seconds: 0.5 images/s
        Item.objects.filter(pk=item.pk).update(
            started_at=start + timedelta(seconds=2 * n),
            generated_at=start + timedelta(seconds=2 * n + 2),
            duration_s=2.0,
        )
    plan = campaign_plan(
        template_version=campaign.template_version,
        recipe=recipe,
        csv_bytes=b"color,material,product_type,name\nred,mesh,sneaker,A\n",
        variations=10,
    )

    estimate = campaign_estimate(plan=plan)

    (line,) = estimate.lines
    assert line.seconds == pytest.approx(20.0)  # 10 images at 0.5 a second
    assert "recent throughput (20 images: 30.0/min)" == line.speed_basis
    assert estimate.duration == "20 s"


# --- creating over budget ----------------------------------------------------------------------


def test_creating_a_campaign_over_its_cap_needs_a_confirmation(
    creative, template_version, recipe, products_csv, priced
):
    arguments = dict(
        name="Over",
        template_version=template_version,
        recipe=recipe,
        csv_bytes=products_csv,
        variations=2,
        user=creative,
        budget_cap="1.00",
    )
    with pytest.raises(InputError) as error:
        campaign_submit(**arguments)
    assert error.value.fields == {"budget"}
    assert "over the campaign cap of £1.00" in str(error.value)
    assert not Campaign.objects.exists()

    campaign = campaign_submit(**arguments, budget_confirmed=True)

    assert campaign.budget_cap == Decimal("1.00")
    assert campaign.items.count() == 40


def test_a_campaign_within_its_cap_and_the_month_is_created_without_asking(
    creative, template_version, recipe, products_csv, priced
):
    month_budget_set(month=month_of(), amount="100")
    campaign = campaign_submit(
        name="Within",
        template_version=template_version,
        recipe=recipe,
        csv_bytes=products_csv,
        user=creative,
        budget_cap="50",
    )
    assert campaign.budget_cap == Decimal("50.00")


def form_data(template_version, recipe, products_csv, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {
        "name": "Spring",
        "template": template_version.pk,
        "recipe": recipe.pk,
        "csv_file": SimpleUploadedFile("products.csv", products_csv, content_type="text/csv"),
        "variations": 2,
        "seed_policy": "fixed",
        **extra,
    }


def test_preview_shows_the_estimate_before_anything_is_created(
    creative_client, template_version, recipe, products_csv, priced
):
    response = creative_client.post(
        reverse("generation:campaign_preview"),
        form_data(template_version, recipe, products_csv),
        **HTMX,
    )
    fragment = response.content.decode()

    assert response.status_code == 200
    assert "Estimate: £4.00" in fragment
    assert "(£0.1000 per image)" in fragment
    assert "40 images × £0.1000 from the configured rates" in fragment
    assert "about " in fragment
    assert "over-budget" not in fragment
    assert not Campaign.objects.exists()


def test_preview_over_the_cap_says_so_and_offers_to_create_anyway(
    creative_client, template_version, recipe, products_csv, priced
):
    response = creative_client.post(
        reverse("generation:campaign_preview"),
        form_data(template_version, recipe, products_csv, budget_cap="2.50"),
        **HTMX,
    )
    fragment = response.content.decode()

    assert "The estimate of £4.00 is over the campaign cap of £2.50." in fragment
    assert 'name="budget_confirm" value="on" form="campaign-form"' in fragment


def test_create_over_this_months_budget_asks_then_creates_when_confirmed(
    creative_client, template_version, recipe, products_csv, priced
):
    month_budget_set(month=month_of(), amount="3.00")

    asked = creative_client.post(
        reverse("generation:campaign_create"), form_data(template_version, recipe, products_csv)
    )
    page = asked.content.decode()

    assert asked.status_code == 400
    assert "over what is left of this month&#x27;s budget (£3.00 of £3.00)" in page
    assert 'name="budget_confirm"' in page
    assert not Campaign.objects.exists()

    created = creative_client.post(
        reverse("generation:campaign_create"),
        form_data(template_version, recipe, products_csv, budget_confirm="on"),
    )

    campaign = Campaign.objects.get()
    assert created.status_code == 302
    assert created["Location"] == reverse("generation:campaign", args=[campaign.pk])


def test_a_bad_cap_on_the_new_campaign_form_is_shown_on_its_field(
    creative_client, template_version, recipe, products_csv
):
    response = creative_client.post(
        reverse("generation:campaign_create"),
        form_data(template_version, recipe, products_csv, budget_cap="12.345"),
    )

    assert response.status_code == 400
    assert "at most two decimal places (GBP), got 12.345" in response.content.decode()
    assert not Campaign.objects.exists()


# --- the pause at a cap ----------------------------------------------------------------------


def test_a_campaign_pauses_itself_when_spend_with_work_in_flight_reaches_its_cap(
    campaign, priced, fake_backend, handoffs
):
    campaign_budget_set(campaign=campaign, cap="0.80")

    run_job(campaign, 0)  # 4 images: 0.40
    run_job(campaign, 0)  # 4 more reach the cap while they are in flight
    made = run_job(campaign, 0)  # the campaign is paused: nothing is claimed

    campaign.refresh_from_db()
    assert made == 0
    assert (campaign.status, campaign.pause_reason) == ("paused", "budget")
    assert campaign.pause_note.startswith("budget reached: £0.80 of the campaign cap of £0.80")
    assert campaign_spend(campaign=campaign).spent == Decimal("0.80")
    assert campaign.items.filter(status=Item.Status.SCORING).count() == 8
    assert campaign.items.filter(status=Item.Status.QUEUED).count() == 32


def test_a_worker_claims_nothing_for_a_campaign_already_at_its_cap(
    campaign, priced, fake_backend, handoffs
):
    spend_on(campaign, "5.00")
    campaign_budget_set(campaign=campaign, cap="5.00")  # reached, but still running

    assert run_job(campaign) == 0

    campaign.refresh_from_db()
    assert campaign.paused_for_budget
    assert fake_backend.calls == 0


def test_the_last_batch_reaching_the_cap_lets_the_campaign_complete(
    creative, template_version, recipe, priced, fake_backend, handoffs
):
    campaign = campaign_submit(
        name="Small",
        template_version=template_version,
        recipe=recipe,
        csv_bytes=b"color,material,product_type,name\nred,mesh,sneaker,A\n",
        variations=4,
        user=creative,
        budget_cap="0.40",
    )

    run_job(campaign)

    campaign.refresh_from_db()
    assert campaign.status == "running"  # nothing was left to start: no pause


def test_a_paused_campaign_resumes_only_once_its_cap_is_raised(
    handoffs, campaign, priced, fake_backend, django_capture_on_commit_callbacks
):
    campaign_budget_set(campaign=campaign, cap="0.40")
    spend_on(campaign, "0.40")
    run_job(campaign)
    campaign.refresh_from_db()

    with pytest.raises(InputError, match="budget: budget reached: .* raise the campaign's cap"):
        campaign_control(campaign=campaign, action="resume")

    with django_capture_on_commit_callbacks(execute=True):
        message = campaign_budget_set(campaign=campaign, cap="10", resume=True)

    campaign.refresh_from_db()
    assert message.endswith("cap set to £10.00. Resumed.")
    assert (campaign.status, campaign.pause_reason, campaign.pause_note) == ("running", "", "")
    assert any(job == "generation.jobs.generate_items" for job, _ids in handoffs)


def test_a_manual_pause_is_recorded_as_such(campaign):
    campaign_control(campaign=campaign, action="pause")

    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == ("paused", "manual")
    assert not campaign.paused_for_budget


def test_this_months_budget_pauses_a_campaign_without_a_cap(
    campaign, priced, fake_backend, handoffs
):
    month_budget_set(month=month_of(), amount="0.40")

    run_job(campaign, 0)
    made = run_job(campaign, 0)

    campaign.refresh_from_db()
    assert made == 0
    assert campaign.paused_for_budget
    assert "of the " in campaign.pause_note and "budget of £0.40" in campaign.pause_note
    with pytest.raises(InputError, match="raise this month's budget first"):
        campaign_control(campaign=campaign, action="resume")


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_overshoot_a_cap_by_at_most_one_batch(
    handoffs, campaign, priced, fake_backend, monkeypatch
):
    """Worker A holds the campaign's row lock while worker B asks for it; B must wait, then
    see A's batch in flight and pause the campaign instead of claiming a second batch."""
    campaign_budget_set(campaign=campaign, cap="0.45")
    spend_on(campaign, "0.40")
    first, second = campaign_jobs(campaign)[:2]
    real_spend = budget_service.campaign_spend
    a_locked = threading.Event()
    role = threading.local()
    errors: list[BaseException] = []

    def other_backend_waits_on_a_lock() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # fresh activity, not cached
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0] > 0

    def spend_while_b_waits(*, campaign):
        if getattr(role, "name", "") == "A" and not getattr(role, "waited", False):
            role.waited = True
            a_locked.set()
            waited = threading.Event()
            for _ in range(200):  # B asks for the same row lock: wait until it blocks on it
                if other_backend_waits_on_a_lock():
                    break
                waited.wait(0.05)
            else:
                raise AssertionError("worker B never waited for the campaign's row lock")
        return real_spend(campaign=campaign)

    monkeypatch.setattr(budget_service, "campaign_spend", spend_while_b_waits)

    def worker(name: str, ids: list[str]) -> None:
        role.name = name
        try:
            items_generate(item_ids=ids)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    a = threading.Thread(target=worker, args=("A", first))
    b = threading.Thread(target=worker, args=("B", second))
    a.start()
    assert a_locked.wait(30)
    b.start()
    a.join(60)
    b.join(60)

    assert not errors, errors
    campaign.refresh_from_db()
    spent = campaign_spend(campaign=campaign).spent
    batch = Decimal("0.10") * len(first)
    assert campaign.paused_for_budget
    assert fake_backend.calls == 1  # one batch generated, not two
    assert spent - campaign.budget_cap <= batch
    assert Item.objects.filter(pk__in=second, status=Item.Status.QUEUED).count() == len(second)


# --- alerts ---------------------------------------------------------------------------------------


def test_managers_are_emailed_once_at_80_and_once_at_100_percent_of_a_cap(
    campaign, priced, fake_backend, handoffs, mailoutbox, django_capture_on_commit_callbacks
):
    boss = make_user("bea", "manager")
    boss.email = "bea@example.com"
    boss.save()
    make_user("nomail", "manager")  # no address: not mailed
    campaign_budget_set(campaign=campaign, cap="1.00")

    with django_capture_on_commit_callbacks(execute=True):
        spend_on(campaign, "0.70", key="a")
    assert mailoutbox == []
    with django_capture_on_commit_callbacks(execute=True):
        spend_on(campaign, "0.15", key="b")
        spend_on(campaign, "0.01", key="c")
    with django_capture_on_commit_callbacks(execute=True):
        spend_on(campaign, "0.20", key="d")
        spend_on(campaign, "0.20", key="e")

    subjects = [mail.subject for mail in mailoutbox]
    assert subjects == [
        "[Studio] Budget 80% reached: campaign “Spring shoes”",
        "[Studio] Budget reached: campaign “Spring shoes”",
    ]
    assert mailoutbox[0].to == ["bea@example.com"]
    assert "£0.85, 80% or more of its cap of £1.00" in mailoutbox[0].body
    assert "budget reached" in mailoutbox[1].body
    assert BudgetAlert.objects.count() == 2


def test_raising_a_cap_arms_its_alerts_again(
    campaign, priced, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.STUDIO_BUDGET_ALERT_EMAILS = ["finance@example.com"]
    campaign_budget_set(campaign=campaign, cap="1.00")
    with django_capture_on_commit_callbacks(execute=True):
        spend_on(campaign, "0.90", key="a")
    campaign_budget_set(campaign=campaign, cap="2.00")
    with django_capture_on_commit_callbacks(execute=True):
        spend_on(campaign, "0.80", key="b")

    assert [mail.subject.split(":")[0] for mail in mailoutbox] == [
        "[Studio] Budget 80% reached",
        "[Studio] Budget 80% reached",
    ]
    assert mailoutbox[1].to == ["finance@example.com"]


def test_the_month_budget_alerts_managers_too(
    campaign, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.STUDIO_BUDGET_ALERT_EMAILS = ["finance@example.com"]
    month_budget_set(month=month_of(), amount="10")
    with django_capture_on_commit_callbacks(execute=True):
        spend_on(campaign, "8.50")

    (mail,) = mailoutbox
    assert mail.subject.startswith("[Studio] Budget 80% reached: the ")
    assert "£8.50, 80% or more of the budget of £10.00" in mail.body


@pytest.mark.parametrize("persona", ["creative", "reviewer", "manager"])
def test_every_page_shows_a_banner_when_a_budget_is_near_or_reached(
    request, client, persona, campaign, priced
):
    campaign_budget_set(campaign=campaign, cap="1.00")
    spend_on(campaign, "0.85")
    client.force_login(request.getfixturevalue(persona))

    page = client.get(reverse("catalogue:search")).content.decode()

    assert 'class="budget-banner"' in page
    assert "Spring shoes: 80% of its £1.00 cap (£0.85)." in page


def test_the_banner_names_a_campaign_paused_by_its_budget(
    client, manager, campaign, priced, fake_backend, handoffs
):
    campaign_budget_set(campaign=campaign, cap="0.10")
    spend_on(campaign, "0.10")
    run_job(campaign)
    client.force_login(manager)

    page = client.get(reverse("generation:dashboard")).content.decode()

    assert "Budget reached:" in page
    assert "Spring shoes is paused: budget reached: £0.10 of the campaign cap of £0.10" in page
    assert "Paused: budget reached" in page  # the campaign's badge on the dashboard


def test_no_banner_without_budgets(creative_client, campaign):
    page = creative_client.get(reverse("generation:dashboard")).content.decode()
    assert "budget-banner" not in page


# --- the campaign page ----------------------------------------------------------------------------


def test_the_campaign_page_shows_why_it_paused_and_lets_a_manager_raise_the_cap_and_resume(
    client, manager, campaign, priced, fake_backend, handoffs
):
    campaign_budget_set(campaign=campaign, cap="0.10")
    spend_on(campaign, "0.10")
    run_job(campaign)
    client.force_login(manager)
    url = reverse("generation:campaign", args=[campaign.pk])

    page = client.get(url).content.decode()
    assert "<strong>Paused</strong> — budget reached: £0.10 of the campaign cap of £0.10" in page
    assert "Raise the cap below and resume." in page
    assert '£0.10 <span class="muted">(100% used)</span>' in page

    response = client.post(
        reverse("generation:campaign_budget", args=[campaign.pk]), {"cap": "20", "resume": "1"}
    )

    campaign.refresh_from_db()
    assert response.status_code == 302
    assert (campaign.status, campaign.budget_cap) == ("running", Decimal("20.00"))
    assert "cap set to £20.00. Resumed." in client.get(url).content.decode()


def test_a_bad_cap_from_the_campaign_page_is_refused_with_its_reason(manager_client, campaign):
    response = manager_client.post(
        reverse("generation:campaign_budget", args=[campaign.pk]), {"cap": "-3"}, follow=True
    )

    campaign.refresh_from_db()
    assert campaign.budget_cap is None
    assert "cap: must be more than 0, got -3" in response.content.decode()


def test_a_manager_removes_a_cap(manager_client, campaign):
    campaign_budget_set(campaign=campaign, cap="5")

    manager_client.post(
        reverse("generation:campaign_budget", args=[campaign.pk]), {"cap": "", "remove": "1"}
    )

    campaign.refresh_from_db()
    assert campaign.budget_cap is None


def test_only_managers_and_admins_set_a_campaigns_cap(creative_client, campaign):
    response = creative_client.post(
        reverse("generation:campaign_budget", args=[campaign.pk]), {"cap": "5"}
    )

    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.budget_cap is None


# --- the budgets page --------------------------------------------------------------------------


def test_the_budgets_page_shows_the_month_against_its_budget_and_the_capped_campaigns(
    manager_client, campaign
):
    month_budget_set(month=month_of(), amount="200")
    campaign_budget_set(campaign=campaign, cap="50")
    spend_on(campaign, "12.5")

    page = manager_client.get(reverse("generation:budgets")).content.decode()

    assert "£12.50" in page and "£200.00" in page and "£187.50" in page
    assert "(6% used)" in page
    assert "Spring shoes" in page and "£50.00" in page
    assert 'aria-current="page">Budgets</a>' in page


def test_a_manager_sets_a_months_budget_on_the_budgets_page(manager_client, manager):
    response = manager_client.post(
        reverse("generation:budgets"), {"month": "2031-02", "amount": "1500"}
    )

    budget = MonthlyBudget.objects.get()
    assert response.status_code == 302
    assert (budget.month.isoformat(), budget.amount, budget.set_by) == (
        "2031-02-01",
        Decimal("1500.00"),
        manager,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"month": "2031-02", "amount": "0"}, "must be more than 0"),
        ({"month": "2031-02", "amount": "99.999"}, "at most two decimal places"),
        ({"month": "Feb", "amount": "10"}, "expected a month as YYYY-MM"),
    ],
)
def test_a_bad_month_budget_is_refused_on_its_field(manager_client, data, message):
    response = manager_client.post(reverse("generation:budgets"), data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not MonthlyBudget.objects.exists()


@pytest.mark.parametrize("persona", ["creative_client", "reviewer_client"])
def test_the_budgets_page_is_for_managers(request, persona):
    client = request.getfixturevalue(persona)
    assert client.get(reverse("generation:budgets")).status_code == 403


def test_ledger_entries_of_a_campaign_add_up_to_the_months_spend(
    campaign, priced, fake_backend, handoffs
):
    run_job(campaign, 0)
    run_job(campaign, 1)

    total = sum(CostEntry.objects.values_list("amount", flat=True))
    assert budget_service.month_spend().spent == total == campaign_spend(campaign=campaign).spent


def test_a_threshold_reached_is_a_budget_threshold_webhook_event(
    campaign, priced, manager, settings, handoffs
):
    from studio.models import WebhookEvent
    from studio.webhooks import subscription_create

    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = True
    subscription_create(user=manager, url="http://127.0.0.1:9/hook", events=["budget.threshold"])
    campaign_budget_set(campaign=campaign, cap="1.00")
    spend_on(campaign, "0.85", key="a")

    (event,) = WebhookEvent.objects.filter(type="budget.threshold")
    budget = event.payload["data"]["budget"]
    assert budget["scope"] == "campaign" and budget["campaign"] == str(campaign.pk)
    assert (budget["threshold"], budget["cap"], budget["currency"]) == (80, "1.00", "GBP")
