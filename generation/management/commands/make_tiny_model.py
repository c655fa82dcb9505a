"""Build the tiny offline Stable Diffusion model and two LoRAs (no database needed)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Build a tiny random-weight SD model (diffusers folder) and two LoRAs under DIR; "
        "prints their paths as JSON. Register DIR/model as the base model source and "
        "DIR/loras/<name>.safetensors as LoRA files."
    )
    # Building files only: no system checks (they would touch the database settings).
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)

    def handle(self, *args, directory: Path, **options) -> None:
        from generation.tiny import build_tiny_model

        paths = build_tiny_model(directory.expanduser().resolve())
        self.stdout.write(json.dumps(paths, indent=2))
