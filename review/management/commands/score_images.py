"""Score image files with the automatic quality checks and the site-wide policy.

    python manage.py score_images out/*.png            # one readable line per image
    python manage.py score_images a.png b.png --json   # one JSON object per line
    python manage.py score_images out/*.png --clip --prompt "a red sneaker"
                                                        # plus CLIP text match (in batches)

Useful to calibrate thresholds on real output before changing settings. Exits with status 2
if any file could not be read (after scoring all the others).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from review.quality import add_clip, decide, default_policy, load_image, score_image


class Command(BaseCommand):
    help = "Score image files (PNG, JPEG, WEBP) and print the verdict the quality policy gives."
    # Pure computation on files: must run without a database or a migrated schema.
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
        clip: bool = False,
        prompt: str = "",
        **options: Any,
    ) -> None:
        from django.conf import settings

        policy = default_policy()
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
                    unwanted=[list(settings.STUDIO_QUALITY_UNWANTED_CONCEPTS)] * len(images),
                )
                clip_results = dict(zip(images, results, strict=True))
            for path, image in images.items():
                self._report(path, image, clip_results.get(path), policy, as_json)
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(paths)} file(s) could not be read: {', '.join(failed)}",
                returncode=2,
            )

    def _report(self, path: str, image, clip_result, policy: dict, as_json: bool) -> None:
        card = score_image(image)
        notes = add_clip(card, clip_result) if clip_result is not None else []
        decision = decide(card, **policy)
        scores = {name: round(value, 4) for name, value in card.scores.items()}
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "path": path,
                        "verdict": decision.verdict,
                        "overall": round(decision.overall, 4),
                        "scores": scores,
                        "reasons": [reason.as_dict() for reason in decision.reasons],
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
            self.stdout.write(
                f"{path}: {decision.verdict} (overall {decision.overall:.2f}; {numbers}) "
                f"- {problems}" + "".join(f" ({note})" for note in notes)
            )
