from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from generation.models import Item
from generation.services import item_reproduce
from studio.errors import InputError


class Command(BaseCommand):
    help = (
        "Regenerate an item from its pinned model/LoRA versions, seed and parameters (alone if "
        "it was made batch-invariant, else at its recorded batch size). With --check, exit 0 "
        "only if the pixels are identical."
    )

    def add_arguments(self, parser):
        parser.add_argument("item_id")
        parser.add_argument("--check", action="store_true", help="compare with the stored image")
        parser.add_argument("--output", help="write the regenerated PNG here")

    def handle(self, *args, item_id, check, output, **opts):
        try:
            item = Item.objects.select_related("base_model").get(pk=item_id)
        except (Item.DoesNotExist, ValidationError):
            raise CommandError(f"item: no item with id {item_id!r}", returncode=2) from None
        try:
            result = item_reproduce(item=item)
        except InputError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if output:
            result.image.save(output, format="PNG")
            self.stdout.write(f"wrote {output}")
        how = (
            "regenerated alone, batch-invariant"
            if result.batch_invariant
            else f"batch size {result.batch_size}"
        )
        if result.identical is None:
            message = "the item has no stored image to compare with"
        elif result.identical:
            message = f"identical pixels ({how})"
        else:
            diff = (
                "different size"
                if result.max_difference is None
                else (f"max difference {result.max_difference}/255")
            )
            message = f"pixels differ: {diff} ({how})"
        self.stdout.write(message)
        if check and not result.identical:
            raise CommandError(message, returncode=1)
