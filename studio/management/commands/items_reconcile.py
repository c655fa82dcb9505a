from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from studio.reconcile import reconcile


class Command(BaseCommand):
    help = "Re-enqueue work lost with a worker or with Redis (the database is the truth)."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(reconcile()))
