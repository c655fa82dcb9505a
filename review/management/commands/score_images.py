"""Score image files with the automatic quality checks and the site-wide policy.

    python manage.py score_images out/*.png            # one readable line per image
    python manage.py score_images a.png b.png --json   # one JSON object per line

Useful to calibrate thresholds on real output before changing settings. Exits with status 2
if any file could not be read (after scoring all the others).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from review.quality import decide, default_policy, load_image, score_image


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

    def handle(self, *args: Any, paths: list[str], as_json: bool, **options: Any) -> None:
        policy = default_policy()
        failed: list[str] = []
        for path in paths:
            try:
                image = load_image(path)
            except ValueError as exc:
                # The message already names the path; keep going with the others.
                self.stderr.write(f"error: {exc}")
                failed.append(path)
                continue
            card = score_image(image)
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
                            "reasons": decision.reasons,
                            "measures": {k: round(v, 4) for k, v in card.measures.items()},
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                numbers = " ".join(f"{name}={value:.2f}" for name, value in scores.items())
                # The last reason is the policy's threshold line; the others say what is wrong.
                problems = "; ".join(decision.reasons[:-1]) or "no problems found"
                self.stdout.write(
                    f"{path}: {decision.verdict} (overall {decision.overall:.2f}; {numbers}) "
                    f"- {problems}"
                )
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(paths)} file(s) could not be read: {', '.join(failed)}",
                returncode=2,
            )
