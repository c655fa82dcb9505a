from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from studio.embedded import ensure_environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
ensure_environment()
application = get_wsgi_application()
