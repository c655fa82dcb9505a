#!/bin/sh
# One image, several roles (see docker/compose.yaml):
#   web                 gunicorn on :8000 (PORT), STUDIO_WEB_WORKERS processes
#   worker <queue>      an RQ SimpleWorker for generation | quality | delivery
#   reconciler          re-enqueue items whose lease expired, every RECONCILE_SECONDS
#   migrate             apply migrations and create the role groups, then exit
#   manage <args...>    any manage.py command
#   <command...>        anything else, as is
set -eu
cd /app

role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
    web)
        exec gunicorn studio.wsgi:application \
            --bind "0.0.0.0:${PORT:-8000}" \
            --workers "${STUDIO_WEB_WORKERS:-${WEB_CONCURRENCY:-3}}" \
            --worker-class gthread \
            --threads "${STUDIO_WEB_THREADS:-4}" \
            --timeout "${WEB_TIMEOUT:-60}" \
            --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
            --access-logfile - \
            "$@"
        ;;
    worker)
        queue="${1:?usage: worker generation|quality|delivery}"
        # SimpleWorker runs each job in the worker process: no fork per job, so the
        # generation worker keeps its model (and CUDA context) loaded between jobs.
        exec python manage.py rqworker "$queue" \
            --worker-class rq.worker.SimpleWorker --with-scheduler
        ;;
    reconciler)
        # The database is the source of truth: a job lost with a worker or with Redis is
        # found here by its expired lease and enqueued again.
        while :; do
            python manage.py items_reconcile || echo "reconciler: pass failed" >&2
            sleep "${RECONCILE_SECONDS:-60}"
        done
        ;;
    migrate)
        python manage.py migrate --noinput
        exec python manage.py shell -c \
            "from studio.services import roles_ensure; roles_ensure()"
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
