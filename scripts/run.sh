#!/usr/bin/env bash
# Serve the web app and a Celery worker (with beat) until either stops or we are told to.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"

"$BIN/celery" -A changecontrol worker --beat --loglevel INFO --concurrency 2 \
  --hostname "portal-worker@%h" &
worker=$!
"$BIN/gunicorn" changecontrol.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --threads 4 \
  --access-logfile - --graceful-timeout 10 &
web=$!

stop() { kill -TERM "$web" "$worker" 2>/dev/null || true; wait "$web" "$worker" 2>/dev/null || true; }
trap stop EXIT INT TERM

echo "Change Control Portal: http://127.0.0.1:${PORT}/  (sign in as dev1 / ${DEMO_PASSWORD:-demo})"
# Whichever stops first takes the other down with it.
wait -n "$web" "$worker"
