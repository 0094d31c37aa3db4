#!/usr/bin/env bash
# Serve the web app, a Celery worker and beat until one stops or we are told to stop.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
DATA_DIR="${DATA_DIR:-$PWD/var}"

# One worker for every queue: without -Q it consumes the portal queue and each environment's
# Terraform queue (terraform.dev, …; docs/workers.md).
"$BIN/celery" -A changecontrol worker --loglevel INFO --concurrency 2 \
  --hostname "portal-worker@%h" &
worker=$!
"$BIN/celery" -A changecontrol beat --loglevel INFO \
  --schedule "$DATA_DIR/celerybeat-schedule" --pidfile= &
beat=$!
"$BIN/gunicorn" changecontrol.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --threads 4 \
  --access-logfile - --graceful-timeout 10 &
web=$!

stopping=""
stop() {
  [ -n "$stopping" ] && return
  stopping=1
  kill -TERM "$web" "$beat" "$worker" 2>/dev/null || true
  # A Terraform run in progress gets up to 30 s to finish; then everything is stopped.
  for _ in $(seq 30); do
    kill -0 "$web" 2>/dev/null || kill -0 "$beat" 2>/dev/null || kill -0 "$worker" 2>/dev/null || return 0
    sleep 1
  done
  kill -KILL "$web" "$beat" "$worker" 2>/dev/null || true
}
trap stop EXIT INT TERM

echo "Change Control Portal: http://127.0.0.1:${PORT}/  (sign in as dev1 / ${DEMO_PASSWORD:-demo})"
# Whichever stops first takes the others down with it.
wait -n "$web" "$beat" "$worker"
