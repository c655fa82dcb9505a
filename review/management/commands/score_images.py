"""Score image files with the automatic quality checks and a quality policy.

    python manage.py score_images out/*.png            # one readable line per image
    python manage.py score_images a.png b.png --json   # one JSON object per line
    python manage.py score_images out/*.png --template product-photo
                                                        # that template's default content rules
    python manage.py score_images out/*.png --campaign 5f0c...   # that campaign's policy
    python manage.py score_images out/*.png --clip --prompt "a red sneaker"
                                                        # plus CLIP text match (in batches)

Without --template or --campaign the site-wide default policy judges (thresholds from
settings, the content rules every template gets). Every image is screened for content by
NudeNet's bundled detector; its detections and the reason codes are printed next to the
scores. Useful to calibrate thresholds on real output before changing settings. Exits with
status 2 if any file could not be read (after scoring all the others), or for an unknown
template or campaign.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from review.quality import (
    add_clip,
    add_content,
    decide,
    default_policy,
    load_image,
    score_image,
)
from review.quality.content import default_content_rules, screen_images


class Command(BaseCommand):
    help = "Score image files (PNG, JPEG, WEBP) and print the verdict the quality policy gives."
    # Pure computation on files: must run without a database or a migrated schema (only
    # --campaign reads one).
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="image files to score")
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="print one JSON object per line (JSON Lines)",
        )
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--template",
            default="",
            metavar="NAME",
            help="judge with this prompt template's default content rules (e.g. product-photo)",
        )
        which.add_argument(
            "--campaign",
            default="",
            metavar="ID",
            help="judge with this campaign's quality policy (needs the database)",
        )
        parser.add_argument(
            "--clip",
            action="store_true",
            help="also score CLIP text match and unwanted concepts (needs STUDIO_CLIP_MODEL; "
            "skipped with a note otherwise)",
        )
        parser.add_argument(
            "--prompt",
            default="",
            help="the prompt the images were made from (for --clip; default: the file name)",
        )

    def handle(
        self,
        *args: Any,
        paths: list[str],
        as_json: bool,
        template: str = "",
        campaign: str = "",
        clip: bool = False,
        prompt: str = "",
        **options: Any,
    ) -> None:
        from django.conf import settings

        policy, rules, unwanted = self._policy(template=template, campaign=campaign)
        failed: list[str] = []
        batch = settings.STUDIO_CLIP_BATCH_SIZE if clip else 1
        for start in range(0, len(paths), batch):
            chunk = paths[start : start + batch]
            images = {}
            for path in chunk:
                try:
                    images[path] = load_image(path)
                except ValueError as exc:
                    # The message already names the path; keep going with the others.
                    self.stderr.write(f"error: {exc}")
                    failed.append(path)
            clip_results = {}
            if clip and images:
                from pathlib import Path

                from review.quality.clip import clip_score_images

                results = clip_score_images(
                    list(images.values()),
                    prompts=[prompt or Path(p).stem.replace("_", " ") for p in images],
                    unwanted=[unwanted] * len(images),
                )
                clip_results = dict(zip(images, results, strict=True))
            screens = dict(zip(images, screen_images(list(images.values())), strict=True))
            for path, image in images.items():
                self._report(
                    path, image, screens[path], rules, clip_results.get(path), policy, as_json
                )
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(paths)} file(s) could not be read: {', '.join(failed)}",
                returncode=2,
            )

    def _policy(self, *, template: str, campaign: str) -> tuple[dict, list[dict], list[str]]:
        """(decide's keywords, content rules, CLIP's unwanted concepts) for the choice made."""
        from django.conf import settings

        if not campaign:
            return (
                default_policy(),
                default_content_rules(template or None),
                list(settings.STUDIO_QUALITY_UNWANTED_CONCEPTS),
            )
        import uuid

        from django.core.exceptions import ObjectDoesNotExist

        from generation.models import Campaign

        try:
            found = Campaign.objects.select_related(
                "quality_policy", "template_version__template"
            ).get(pk=uuid.UUID(campaign))
        except (ValueError, ObjectDoesNotExist):
            raise CommandError(f"--campaign: no campaign {campaign!r}", returncode=2) from None
        policy = getattr(found, "quality_policy", None)
        if policy is None:  # scored nothing yet: what quality_policy_ensure would give it
            return (
                default_policy(),
                default_content_rules(found.template_version.template.name),
                list(settings.STUDIO_QUALITY_UNWANTED_CONCEPTS),
            )
        return (
            {
                "approve_at": policy.approve_at,
                "reject_below": policy.reject_below,
                "weights": dict(policy.weights),
            },
            list(policy.content_rules or []),
            list(policy.unwanted_concepts or []),
        )

    def _report(
        self, path: str, image, screen, rules, clip_result, policy: dict, as_json: bool
    ) -> None:
        card = score_image(image)
        add_content(card, screen, rules)
        notes = add_clip(card, clip_result) if clip_result is not None else []
        decision = decide(card, **policy)
        scores = {name: round(value, 4) for name, value in card.scores.items()}
        detections = [
            {"class": d["class"], "score": d["score"], "box": d["box"]} for d in card.detections
        ]
        codes = sorted({reason.code for reason in decision.reasons})
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "path": path,
                        "verdict": decision.verdict,
                        "overall": round(decision.overall, 4),
                        "scores": scores,
                        "reason_codes": codes,
                        "reasons": [reason.as_dict() for reason in decision.reasons],
                        "detections": detections,
                        "basis": decision.basis,
                        "measures": {k: round(v, 4) for k, v in card.measures.items()},
                        "notes": notes,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            numbers = " ".join(f"{name}={value:.2f}" for name, value in scores.items())
            problems = (
                "; ".join(f"{r.text} ({r.detail})" for r in decision.reasons) or "no problems found"
            )
            found = ", ".join(f"{d['class']} {d['score']:.2f}" for d in detections)
            self.stdout.write(
                f"{path}: {decision.verdict} (overall {decision.overall:.2f}; {numbers}) "
                f"- {problems}"
                + (f" [detected: {found}]" if found else "")
                + "".join(f" ({note})" for note in notes)
            )
