from __future__ import annotations

from django.core.management.base import BaseCommand

from generation.demo import demo_seed


class Command(BaseCommand):
    help = (
        "Build the tiny offline model (once) and register the demo model, LoRAs, recipes and "
        "templates."
    )

    def add_arguments(self, parser):
        parser.add_argument("--models-dir", help="Where the tiny model lives (STUDIO_MODELS_DIR).")

    def handle(self, *args, models_dir=None, **options):
        seeded = demo_seed(models_dir=models_dir)
        self.stdout.write(f"model    {seeded['model']}  ({seeded['model'].source})")
        self.stdout.write(f"recipe   {seeded['recipe']}")
        for version in seeded["templates"]:
            self.stdout.write(f"template {version}")
        for lora in seeded["loras"]:
            self.stdout.write(f"lora     {lora}")
        for recipe in seeded["recipes"]:
            loras = ", ".join(f"{rl.lora.name} {rl.weight:g}" for rl in recipe.loras.all())
            self.stdout.write(f"recipe   {recipe}  ({loras or 'no LoRA'})")
