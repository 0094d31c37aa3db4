#!/usr/bin/env bash
# The OpenAPI schema is the contract: run schemathesis, with all its checks, against a live
# server on PostgreSQL, as a developer and as operations. Exits non-zero on any failure.
#
# Environment (all optional):
#   ST_DATABASE   database to (re)create            [changecontrol_schemathesis]
#   PG_URL        PostgreSQL server                  [postgres://postgres@127.0.0.1:5432]
#   ST_REDIS_URL  Celery broker (tasks only queue)   [redis://127.0.0.1:6379/15]
#   ST_EXAMPLES   cases per operation and phase      [25]
#   ST_KEEP       keep the temporary data directory  [unset]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN="$ROOT/.venv/bin"
DB="${ST_DATABASE:-changecontrol_schemathesis}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
EXAMPLES="${ST_EXAMPLES:-25}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")
log() { printf '\n--> %s\n' "$*"; }

export DATABASE_URL="$PG_URL/$DB"
export CELERY_BROKER_URL="${ST_REDIS_URL:-redis://127.0.0.1:6379/15}"
export SECRET_KEY="schemathesis-only-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export DATA_DIR="$WORK/data"
export INFRA_REPO="$DATA_DIR/infra-repo"
export TERRAFORM_BACKEND_CONFIG="workspace_dir=$DATA_DIR/state"
# A plain-HTTP loopback server: no TLS redirect or secure-only cookies here.
export SECURE_SSL_REDIRECT=false SECURE_COOKIES=false SECURE_HSTS_SECONDS=0
export LOG_LEVEL=WARNING
# Generated cases come fast: keep the per-user throttle (429 is in the schema) out of the way.
export API_THROTTLE_RATE="${API_THROTTLE_RATE:-100000/min}"
mkdir -p "$DATA_DIR"

log "database $DB"
psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null
psql "$PG_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
"$BIN/python" manage.py migrate --noinput -v0
"$BIN/python" manage.py init_infra_repo >/dev/null
"$BIN/python" manage.py seed_demo --force --tickets 20 >/dev/null
DEV_TOKEN=$("$BIN/python" manage.py create_api_token dev1)
OPS_TOKEN=$("$BIN/python" manage.py create_api_token ops1)
# A staging ticket waiting for approval (both roles see staging) and one of its runs.
read -r ST_TICKET_ID ST_RUN_ID < <("$BIN/python" manage.py shell --no-imports -c '
from deployments.models import Ticket
t = (Ticket.objects.filter(environment__name="staging", status="awaiting_approval").first()
     or Ticket.objects.filter(environment__name="staging").first())
print(t.pk, t.runs.first().pk)
')
echo "seeded; exercising ticket $ST_TICKET_ID and run $ST_RUN_ID"
CONFIG="$WORK/schemathesis.toml"
cp scripts/schemathesis.toml "$CONFIG"
cat >>"$CONFIG" <<TOML

[[operations]]
include-path-regex = '^/api/v1/tickets/\{id\}/'
parameters = { "path.id" = $ST_TICKET_ID }

[[operations]]
include-path-regex = '^/api/v1/runs/\{id\}/'
parameters = { "path.id" = $ST_RUN_ID }

[[operations]]
include-path-regex = '^/api/v1/environments/\{name\}/'
parameters = { "path.name" = "staging" }
TOML

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "gunicorn on 127.0.0.1:$PORT"
# No request-line limit: generated cases carry parameters far over their maxLength, which
# gunicorn would answer 414 (its HTML) before the API could answer its documented 400.
"$BIN/gunicorn" changecontrol.wsgi --bind "127.0.0.1:$PORT" --workers 2 --threads 4 \
  --limit-request-line 0 \
  --error-logfile "$WORK/gunicorn.log" >"$WORK/gunicorn.out" 2>&1 &
WEB=$!
stop() {
  kill -TERM "$WEB" 2>/dev/null || true
  wait "$WEB" 2>/dev/null || true
  [ -n "${ST_KEEP:-}" ] || rm -rf "$WORK"
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
}
trap stop EXIT
SCHEMA="http://127.0.0.1:$PORT/api/v1/schema/?format=json"
for _ in $(seq 60); do curl -fsS -o /dev/null "$SCHEMA" 2>/dev/null && break; sleep 1; done
curl -fsS -o /dev/null "$SCHEMA"

status=0
for role in dev:"$DEV_TOKEN" ops:"$OPS_TOKEN"; do
  name=${role%%:*}
  token=${role#*:}
  log "schemathesis as $name (all checks, $EXAMPLES examples per operation)"
  set +e
  "$BIN/schemathesis" --config-file "$CONFIG" run "$SCHEMA" \
    --url "http://127.0.0.1:$PORT" \
    --checks all --max-examples "$EXAMPLES" --seed 1 --workers 1 \
    --header "Authorization: Token $token" --no-color \
    --report junit --report-junit-path "$WORK/junit-$name.xml" | tee "$WORK/st-$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  cases=$(grep -A1 '^Test cases:' "$WORK/st-$name.log" | grep -Eo '[0-9]+ generated' | grep -Eo '[0-9]+' || echo "?")
  echo "schemathesis $name: exit $rc, $cases test cases"
  echo "$name $cases" >>"$WORK/cases"
  [ "$rc" -eq 0 ] || status=1
done
log "schemathesis cases per role: $(tr '\n' ' ' <"$WORK/cases")"
if [ "$status" -ne 0 ]; then
  echo "server log:"; tail -40 "$WORK/gunicorn.log" || true
fi
exit "$status"
