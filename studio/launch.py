"""Launching a campaign: the generation plan and its quality policy, as one action.

This is wiring, above the apps: a campaign is generation's, its quality policy is review's,
and the page, the command line and the API all launch through this one function.
"""

from __future__ import annotations

import csv
import io

from django.db import transaction

from generation.models import Campaign, PromptTemplateVersion, Recipe
from generation.services import campaign_submit
from review.services import quality_policy_create, quality_thresholds_check
from studio.errors import InputError


def campaign_launch(
    *, approve_at: float | None = None, reject_below: float | None = None, **submit
) -> Campaign:
    """Validate the thresholds and the whole campaign, then create the campaign, its items and
    its quality policy in one transaction; the generation jobs are enqueued at commit.

    ``submit`` takes campaign_submit's arguments. Raises InputError naming the field; on any
    error nothing is written.
    """
    quality_thresholds_check(approve_at=approve_at, reject_below=reject_below)
    with transaction.atomic():
        campaign = campaign_submit(**submit)
        quality_policy_create(campaign=campaign, approve_at=approve_at, reject_below=reject_below)
    return campaign


def trial_launch(
    *,
    campaign: Campaign,
    recipes: list[Recipe] | None = None,
    rows: int,
    seeds: int = 1,
    user=None,
    templates: list[PromptTemplateVersion] | None = None,
) -> Campaign:
    """An A/B trial of ``recipes`` (or of the template versions ``templates``) on ``rows`` of
    ``campaign``'s rows (spread evenly over them): a new campaign with a recipe axis (or a
    template axis), so every version makes the same rows with the same seeds, under the same
    quality thresholds, at each row's platform size or the recipe's own. A recipe trial keeps
    the campaign's template version, a template trial its recipe. Its campaign page, by recipe
    (or template version), is the side-by-side comparison. Raises InputError naming the field;
    nothing is written then.
    """
    recipes, templates = list(recipes or []), list(templates or [])
    source_rows = campaign.csv_rows or []
    if not source_rows:
        raise InputError("rows", f"{campaign} has no rows to sample")
    if recipes and templates:
        raise InputError("templates", "compare two recipes or two template versions, not both")
    if templates:
        if len(templates) < 2 or len({t.pk for t in templates}) != len(templates):
            raise InputError("templates", "choose two different versions of one template")
        if len({t.template_id for t in templates}) != 1:
            raise InputError(
                "templates", "choose two versions of one template, not two different templates"
            )
    elif len(recipes) < 2 or len({r.pk for r in recipes}) != len(recipes):
        raise InputError("recipes", "choose two different recipes (or two versions of one)")
    if not 1 <= rows <= len(source_rows):
        raise InputError("rows", f"must be between 1 and {len(source_rows)}, got {rows}")
    step = len(source_rows) / rows
    sample = [source_rows[int(i * step)] for i in range(rows)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=campaign.csv_columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(sample)
    policy = getattr(campaign, "quality_policy", None)
    names = " vs ".join(str(v) for v in recipes or templates)
    if templates:
        matrix = {"templates": [t.pk for t in templates], "seeds": seeds}
    else:
        matrix = {"recipes": [f"{r.name}:{r.version}" for r in recipes], "seeds": seeds}
    return campaign_launch(
        name=f"A/B {names}: {campaign.name}"[:200],
        template_version=templates[0] if templates else campaign.template_version,
        recipe=recipes[0] if recipes else campaign.recipe,
        csv_bytes=out.getvalue().encode("utf-8"),
        csv_filename=f"sample of {campaign.csv_filename or 'rows'}"[:255],
        variations=seeds,
        base_seed=campaign.base_seed,
        matrix=matrix,
        approve_at=policy.approve_at if policy else None,
        reject_below=policy.reject_below if policy else None,
        user=user,
    )
