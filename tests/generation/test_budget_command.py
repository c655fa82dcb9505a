"""``manage.py budget set|clear|show`` and the budget lines of ``campaign_status``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from generation.models import MonthlyBudget
from generation.services import campaign_budget_set, cost_record, month_of
from tests.conftest import REPO


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def refused(*args) -> str:
    with pytest.raises(CommandError) as error:
        run(*args)
    assert error.value.returncode == 2
    return str(error.value)


def test_budget_set_caps_a_campaign(campaign):
    out = run("budget", "set", "--campaign", str(campaign.pk), "--cap", "250")

    campaign.refresh_from_db()
    assert campaign.budget_cap == Decimal("250.00")
    assert out.strip() == "Spring shoes: cap set to £250.00."


def test_budget_set_raises_a_cap_and_resumes_a_paused_campaign(campaign):
    campaign_budget_set(campaign=campaign, cap="1")
    cost_record(key="k", kind="api", quantity=1, unit="image", rate="1", campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.paused_for_budget

    out = run("budget", "set", "--campaign", str(campaign.pk), "--cap", "5", "--resume")

    campaign.refresh_from_db()
    assert out.strip().endswith("Resumed.")
    assert campaign.status == "running"


def test_budget_set_gives_a_month_its_budget_and_clear_removes_it(db):
    assert run("budget", "set", "--month", "2030-04", "--amount", "5000.5").strip() == (
        "Budget for 2030-04 set to £5,000.50."
    )
    assert MonthlyBudget.objects.get().amount == Decimal("5000.50")

    assert "removed" in run("budget", "clear", "--month", "2030-04")
    assert not MonthlyBudget.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cap", "0"], "--cap: must be more than 0"),
        (["--cap", "-2"], "--cap: must be more than 0"),
        (["--cap", "10.001"], "--cap: at most two decimal places (GBP)"),
        (["--cap", "lots"], "--cap: expected an amount such as 250.00"),
        (["--cap", "9999999"], "--cap: at most £1,000,000.00 (STUDIO_BUDGET_MAX)"),
        ([], "--cap: required with --campaign"),
        (["--cap", "5", "--amount", "5"], "--amount: goes with --month"),
    ],
)
def test_a_bad_campaign_cap_exits_2_naming_the_option(campaign, args, message):
    assert refused("budget", "set", "--campaign", str(campaign.pk), *args).startswith(message)
    campaign.refresh_from_db()
    assert campaign.budget_cap is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2030-13", "--amount", "5"], "--month: expected a month as YYYY-MM"),
        (["--month", "2030-04", "--amount", "0.001"], "--amount: at most two decimal places"),
        (["--month", "2030-04"], "--amount: required with --month"),
        (["--month", "2030-04", "--cap", "5"], "--cap / --resume: go with --campaign"),
        (["--amount", "5"], "--campaign / --month: give one of them"),
    ],
)
def test_a_bad_month_budget_exits_2_naming_the_option(db, args, message):
    assert refused("budget", "set", *args).startswith(message)
    assert not MonthlyBudget.objects.exists()


def test_an_unknown_campaign_exits_2(db):
    assert refused("budget", "set", "--campaign", "nope", "--cap", "5").startswith(
        "--campaign: no campaign with id 'nope'"
    )


def test_budget_show_json_has_the_month_and_every_capped_campaign(campaign):
    month = month_of()
    run("budget", "set", "--month", f"{month:%Y-%m}", "--amount", "100")
    campaign_budget_set(campaign=campaign, cap="40")
    cost_record(key="k", kind="api", quantity=1, unit="image", rate="12.5", campaign_id=campaign.pk)

    payload = json.loads(run("budget", "show", "--json"))

    assert payload == {
        "currency": "GBP",
        "month": f"{month:%Y-%m}",
        "budget": "100",
        "spent": "12.5",
        "in_flight": "0",
        "remaining": "87.5",
        "percent": 12.5,
        "reached": False,
        "campaigns": [
            {
                "id": str(campaign.pk),
                "name": "Spring shoes",
                "status": "running",
                "pause_reason": "",
                "pause_note": "",
                "cap": "40",
                "spent": "12.5",
                "in_flight": "0",
                "remaining": "27.5",
                "percent": 31.25,
                "reached": False,
            }
        ],
    }


def test_budget_show_prints_the_month_and_the_campaigns(campaign):
    campaign_budget_set(campaign=campaign, cap="10")
    cost_record(key="k", kind="api", quantity=1, unit="image", rate="10", campaign_id=campaign.pk)

    out = run("budget", "show")

    assert "  budget     none" in out
    assert "  spent      £10.00" in out
    assert f"  {campaign.pk}  Spring shoes  £10.00 of £10.00 (100%)  paused — budget reached" in out


def test_campaign_status_says_a_campaign_was_paused_by_its_budget(campaign):
    campaign_budget_set(campaign=campaign, cap="2")
    cost_record(key="k", kind="api", quantity=1, unit="image", rate="2", campaign_id=campaign.pk)

    text = run("campaign_status", str(campaign.pk))
    payload = json.loads(run("campaign_status", str(campaign.pk), "--json"))

    assert text.startswith("Spring shoes (paused: budget reached): 0/40 done")
    assert "  budget reached: £2.00 of the campaign cap of £2.00" in text
    assert "  cost       £2.0000" in text
    assert "  cap        £2.00 (100% used" in text
    assert (payload["pause_reason"], payload["budget_cap"], payload["cost"]) == (
        "budget",
        "2.00",
        "2.0000000000",
    )


def test_budget_from_a_shell_exits_2_for_a_missing_action():
    result = subprocess.run(
        [sys.executable, "manage.py", "budget"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
            "REDIS_URL": "redis://127.0.0.1:6379/15",
            "SECRET_KEY": "x",
        },
    )

    assert result.returncode == 2
    assert "set|clear|show" in result.stderr
