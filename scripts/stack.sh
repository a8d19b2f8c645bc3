#!/usr/bin/env bash
# `make stack`: the compose.yaml topology on one machine, without Docker.
#
#   scripts/stack.sh [start]   real PostgreSQL and Redis (AOF), migrations, seeds, then the IdP,
#                              the register stub, the two portals and an eKYC worker under
#                              gunicorn / RQ; runs in the foreground, Ctrl-C stops everything.
#   scripts/stack.sh stop      stops a stack started elsewhere (`make stack-stop`).
#   scripts/stack.sh status    what is running.
#   scripts/stack.sh fault DRILL [ARG]
#                              a fault drill against the running stack (docs/deployment.md):
#     kill-idp-worker          kill -9 one IdP gunicorn worker (its master starts another)
#     kill-ekyc-worker [N]     kill -9 eKYC worker N (default 1), restarted after 1 s; a case it
#                              was processing is resumed once its lease expires (the sweeper)
#     restart-redis [S]        stop Redis (SIGTERM: the AOF is written), down S s (default 0),
#                              start it again
#     restart-postgres [S]     pg_ctl stop -m fast (every session cut), down S s, start again
#     register-down            stop the register stub (cases wait for it and are retried)
#     register-up              start the register stub again
#
# Everything lives in STACK_DIR (default instance/stack/: pg/, redis/, idp/, register/, run/,
# logs/); the data survives a restart. Remove that folder to start from scratch. Ports:
# IDP_PORT (8000), REGISTER_PORT (8100), PORTAL1_PORT (8201), PORTAL2_PORT (8202),
# STACK_PG_PORT (55440), STACK_REDIS_PORT (56390). `start` records them in run/ports, so `stop`,
# `status` and `fault` find a stack by its STACK_DIR alone. STACK_PORTALS=0 leaves the two
# portals out; STACK_IDP_WORKERS (2) and STACK_EKYC_WORKERS (1) size the rest.
# Every process inherits the caller's environment (EKYC_LEASE_SECONDS, EKYC_SWEEP_INTERVAL,
# EKYC_RETRY_BASE, REGISTER_TIMEOUT, REGISTER_BREAKER_COOLDOWN, TRUSTED_PROXY_HOPS...: see
# idp/settings.py); only the topology's own variables below (URLs, IDP_ENV, INSTANCE_PATH) are
# set here (also written to run/env). `start` touches run/ready once every process answers.
# PostgreSQL runs as the `postgres` system user, like .ci/run (initdb refuses root): as root,
# STACK_DIR and its parent folders must be traversable by that user.
set -euo pipefail
CALLER_PWD=$(pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)

STACK=${STACK_DIR:-$ROOT/instance/stack}
case "$STACK" in /*) ;; *) STACK=$CALLER_PWD/$STACK ;; esac
RUN=$STACK/run      # pid files, run/ports, run/ready
LOGS=$STACK/logs    # one log per process

HOST=${HOST:-127.0.0.1}
PG_PORT=${STACK_PG_PORT:-55440}
REDIS_PORT=${STACK_REDIS_PORT:-56390}
IDP_PORT=${IDP_PORT:-8000}
REGISTER_PORT=${REGISTER_PORT:-8100}
PORTAL1_PORT=${PORTAL1_PORT:-8201}
PORTAL2_PORT=${PORTAL2_PORT:-8202}
IDP_WORKERS=${STACK_IDP_WORKERS:-2}
EKYC_WORKERS=${STACK_EKYC_WORKERS:-1}
PORTALS=${STACK_PORTALS:-1}
# A running stack's own ports win over the environment (stop, status, fault).
if [ "${1:-start}" != start ] && [ -f "$RUN/ports" ]; then
  # shellcheck disable=SC1091
  . "$RUN/ports"
fi

PGDATA=$STACK/pg
REDIS_DIR=$STACK/redis
VENV=$ROOT/.venv/bin
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)

log() { printf '[stack] %s\n' "$*"; }
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else bash -c "$1"; fi; }

# --- the environment every process shares (development mode: `flask seed` needs it) ---------
export FLASK_APP=wsgi
export IDP_ENV=development
export ISSUER=http://$HOST:$IDP_PORT
export DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/dinhdanh
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export INSTANCE_PATH=$STACK/idp                  # dev secrets, media, portal keys
export REGISTER_URL=http://$HOST:$REGISTER_PORT
export REGISTER_ENV=development
export REGISTER_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/register
export REGISTER_INSTANCE_PATH=$STACK/register
export REGISTER_BASE_URL=$REGISTER_URL
export REGISTER_TRUSTED_ISSUER=$ISSUER
export REGISTER_IDP_JWKS_URL=$ISSUER/jwks
export REGISTER_NOTIFY_URL=$ISSUER/ekyc/register-events
export PORTAL_INSTANCE=$INSTANCE_PATH            # clients/<name>/ written by `clients setup`

# --- PostgreSQL and Redis ---------------------------------------------------------------------
pg_start() {
  [ -n "$PGBIN" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
  mkdir -p "$PGDATA" && chmod 700 "$PGDATA"
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PGDATA"
    su postgres -s /bin/sh -c "test -x '$PGDATA'" 2>/dev/null || {
      echo "PostgreSQL runs as user postgres, who cannot reach $PGDATA:" \
           "make $STACK and its parent folders traversable (chmod o+x)" >&2; exit 1; }
  fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "initdb $PGDATA"
    as_postgres "$PGBIN/initdb -D $PGDATA -A trust -U postgres" >/dev/null
  fi
  as_postgres "$PGBIN/pg_ctl -D $PGDATA status" >/dev/null 2>&1 \
    || as_postgres "$PGBIN/pg_ctl -D $PGDATA -l $PGDATA/server.log -w -o '-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1' start" >/dev/null
  for db in dinhdanh register; do
    as_postgres "psql -h 127.0.0.1 -p $PG_PORT -U postgres -tAc \"SELECT 1 FROM pg_database WHERE datname='$db'\"" | grep -q 1 \
      || as_postgres "psql -h 127.0.0.1 -p $PG_PORT -U postgres -c 'CREATE DATABASE $db'" >/dev/null
  done
}
pg_stop() {
  [ -f "$PGDATA/postmaster.pid" ] || return 0
  as_postgres "$PGBIN/pg_ctl -D $PGDATA -m fast -w stop" >/dev/null 2>&1 || true
}
redis_start() {
  command -v redis-server >/dev/null || { echo "Redis is not installed (apt-get install redis-server)" >&2; exit 1; }
  mkdir -p "$REDIS_DIR"
  # AOF persistence, as in compose.yaml: queued cases and SSO sessions survive a restart.
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --appendonly yes --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$LOGS/redis.log"
  for _ in $(seq 1 100); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0  # not LOADING
    sleep 0.1
  done
  echo "Redis did not answer on :$REDIS_PORT (see $LOGS/redis.log)" >&2; exit 1
}
redis_stop() {  # SIGTERM: Redis writes the AOF and exits (found by its pid file, any port)
  local pid
  pid=$(cat "$RUN/redis.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  ps -o comm= -p "$pid" 2>/dev/null | grep -q redis || return 0  # a stale pid file
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
}
wait_gone() {  # wait_gone PID SECONDS: 0 once PID has exited
  for _ in $(seq 1 $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

# --- application processes --------------------------------------------------------------------
# gunicorn NAME PORT WORKERS APP: a gunicorn master in the background, pid in run/NAME.pid.
gunicorn_start() {
  local name=$1 port=$2 workers=$3 app=$4
  rm -f "$RUN/$name.ctl"  # a socket left behind by a master that was killed
  # The apps log one JSON line per request themselves: no gunicorn access log. One control
  # socket per master (gunicorn >= 24 defaults every master to the same ~/.gunicorn/gunicorn.ctl).
  # --keep-alive 75: idle connections outlive the reverse proxy's upstream keep-alive (nginx
  # 60 s), so the proxy, not gunicorn, closes them; a server that closes first races the
  # proxy's next request on that connection (a reset the client cannot safely retry).
  "$VENV/gunicorn" --bind "$HOST:$port" --workers "$workers" --threads 8 --timeout 60 \
    --keep-alive 75 --pid "$RUN/$name.pid" --control-socket "$RUN/$name.ctl" \
    "$app" >>"$LOGS/$name.log" 2>&1 &
}
register_start() { gunicorn_start register "$REGISTER_PORT" 1 'register.app:create_app()'; }
# supervise NAME CMD...: restart CMD when it dies (an eKYC worker killed with -9 comes back,
# as `restart: unless-stopped` does in compose.yaml); TERM stops the loop and the command.
# CMD runs in its own session, and what it leaves behind when it dies (the RQ scheduler, a child
# process) is killed with it, as a container's processes die with its main process.
supervise() {
  local name=$1; shift
  (
    child=
    trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null
          [ -n "$child" ] && kill -KILL -- "-$child" 2>/dev/null; exit 0' TERM INT
    while :; do
      setsid "$@" >>"$LOGS/$name.log" 2>&1 &
      child=$!
      echo "$child" >"$RUN/$name.child"
      set +e; wait "$child"; status=$?; set -e
      kill -KILL -- "-$child" 2>/dev/null || true
      echo "[stack] $name exited with $status, restarting in 1 s" >>"$LOGS/$name.log"
      sleep 1
    done
  ) &
  echo $! >"$RUN/$name.pid"
}
wait_http() {  # wait_http NAME URL: up to 90 s
  for _ in $(seq 1 180); do
    curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "$1 did not answer at $2 (see $LOGS/$1.log)" >&2; return 1
}

stop_all() {
  local pidfile pid
  rm -f "$RUN/ready"
  for pidfile in "$RUN"/*.pid; do
    [ -e "$pidfile" ] || continue
    [ "$(basename "$pidfile")" = redis.pid ] && continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 175); do  # gunicorn drains for up to its graceful timeout (30 s)
    local alive=0
    for pidfile in "$RUN"/*.pid; do
      [ -e "$pidfile" ] || continue
      [ "$(basename "$pidfile")" = redis.pid ] && continue
      pid=$(cat "$pidfile" 2>/dev/null || true)
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for pidfile in "$RUN"/*.pid "$RUN"/*.child; do  # anything still there after 35 s
    [ -e "$pidfile" ] || continue
    [ "$(basename "$pidfile")" = redis.pid ] && continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    case "$pidfile" in *.child) [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true ;; esac
    rm -f "$pidfile"
  done
  redis_stop
  pg_stop
  rm -f "$RUN/stack.pid.main"
}

status() {
  local pidfile pid
  echo "stack in $STACK: IdP :$IDP_PORT, register :$REGISTER_PORT, PostgreSQL :$PG_PORT," \
       "Redis :$REDIS_PORT"
  for pidfile in "$RUN"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then echo "running  $(basename "$pidfile" .pid) (pid $pid)"
    else echo "gone     $(basename "$pidfile" .pid)"; fi
  done
  [ -n "$PGBIN" ] && as_postgres "$PGBIN/pg_ctl -D $PGDATA status" 2>/dev/null | head -1 || true
}

start() {
  mkdir -p "$RUN" "$LOGS" "$INSTANCE_PATH" "$REGISTER_INSTANCE_PATH"
  if ls "$RUN"/*.pid >/dev/null 2>&1; then
    log "stopping what a previous run left behind"
    stop_all
  fi
  rm -f "$RUN/ready"
  cat >"$RUN/ports" <<EOF
HOST=$HOST
PG_PORT=$PG_PORT
REDIS_PORT=$REDIS_PORT
IDP_PORT=$IDP_PORT
REGISTER_PORT=$REGISTER_PORT
PORTAL1_PORT=$PORTAL1_PORT
PORTAL2_PORT=$PORTAL2_PORT
EOF
  # The processes' environment, for a shell or a test that talks to this stack's database:
  # `set -a; . $RUN/env; set +a; .venv/bin/flask ...`
  for name in FLASK_APP IDP_ENV ISSUER DATABASE_URL REDIS_URL INSTANCE_PATH REGISTER_URL \
              REGISTER_ENV REGISTER_DATABASE_URL REGISTER_INSTANCE_PATH PORTAL_INSTANCE; do
    printf "%s=%q\n" "$name" "${!name}"
  done >"$RUN/env"
  trap 'trap - EXIT INT TERM; echo; log "stopping"; stop_all; log "stopped"; exit 0' INT TERM
  trap 'stop_all' EXIT

  log "PostgreSQL on :$PG_PORT ($PGDATA), Redis with AOF on :$REDIS_PORT ($REDIS_DIR)"
  pg_start
  redis_start

  # One-shot jobs: the `migrate`, `register-seed`, `seed` and `portals-setup` services of compose.
  log "migrations"
  "$VENV/flask" db upgrade >"$LOGS/migrate.log" 2>&1 || { cat "$LOGS/migrate.log" >&2; exit 1; }
  log "register seed (synthetic citizens)"
  "$VENV/python" -m register seed >"$LOGS/register-seed.log" 2>&1 \
    || { cat "$LOGS/register-seed.log" >&2; exit 1; }
  log "signing keys and the development demo accounts"
  "$VENV/flask" seed >"$LOGS/seed.log" 2>&1 || { cat "$LOGS/seed.log" >&2; exit 1; }
  if [ "$PORTALS" != 0 ]; then
    log "demo portals registered with the IdP"
    "$VENV/python" -m clients setup --issuer "$ISSUER" --host "$HOST" \
      >"$LOGS/portals-setup.log" 2>&1 || { cat "$LOGS/portals-setup.log" >&2; exit 1; }
  fi

  log "starting the IdP ($IDP_WORKERS workers), the register stub, $EKYC_WORKERS eKYC" \
      "worker(s)$([ "$PORTALS" != 0 ] && echo ", the portals" || true)"
  gunicorn_start idp "$IDP_PORT" "$IDP_WORKERS" wsgi:app
  register_start
  if [ "$PORTALS" != 0 ]; then
    REDIS_URL=redis://127.0.0.1:$REDIS_PORT/1 \
      gunicorn_start portal-public-services "$PORTAL1_PORT" 1 'clients.portal:create_app("public_services")'
    REDIS_URL=redis://127.0.0.1:$REDIS_PORT/1 \
      gunicorn_start portal-social-insurance "$PORTAL2_PORT" 1 'clients.portal:create_app("social_insurance")'
  fi
  for i in $(seq 1 "$EKYC_WORKERS"); do
    supervise "ekyc-worker-$i" "$VENV/flask" ekyc worker
  done

  wait_http idp "http://$HOST:$IDP_PORT/readyz"  # database, migrations, Redis, keys
  wait_http register "http://$HOST:$REGISTER_PORT/healthz"
  if [ "$PORTALS" != 0 ]; then
    wait_http portal-public-services "http://$HOST:$PORTAL1_PORT/"
    wait_http portal-social-insurance "http://$HOST:$PORTAL2_PORT/"
  fi

  cat <<EOF

  DinhDanh stack (PostgreSQL + Redis + gunicorn), data in $STACK/
    IdP (issuer)          $ISSUER/   ($IDP_WORKERS gunicorn workers)
      health / readiness  $ISSUER/healthz  $ISSUER/readyz   metrics $ISSUER/metrics
      citizen             ID number 001199000001  password Citizen-Demo-1
      operator console    $ISSUER/ops/   ops-demo / Operator-Demo-1 (TOTP: docs/operators.md)
    register stub         $REGISTER_URL/openapi.json
EOF
  if [ "$PORTALS" != 0 ]; then
    cat <<EOF
    portals               http://$HOST:$PORTAL1_PORT/  (public services)
                          http://$HOST:$PORTAL2_PORT/  (social insurance)
EOF
  fi
  cat <<EOF
    eKYC workers          $EKYC_WORKERS x flask ekyc worker (restarted when they die)
    PostgreSQL            postgresql://postgres@127.0.0.1:$PG_PORT/dinhdanh  (and /register)
    Redis                 redis://127.0.0.1:$REDIS_PORT/0  (AOF in $REDIS_DIR)
    logs                  $LOGS/
    fault drills          scripts/stack.sh fault kill-idp-worker | kill-ekyc-worker |
                          restart-redis | restart-postgres | register-down | register-up
  Stop with Ctrl-C, or \`make stack-stop\` from another shell.

EOF
  # Stay in the foreground until Ctrl-C / TERM (or `make stack-stop`, which kills the processes
  # and then this script, found by its pid file).
  echo $$ >"$RUN/stack.pid.main"
  touch "$RUN/ready"
  while :; do sleep 1 & wait $! || true; done
}

# --- fault drills -----------------------------------------------------------------------------
fault() {
  local drill=${1:-} arg=${2:-} master pid
  [ -f "$RUN/ports" ] || { echo "no stack was started in $STACK" >&2; exit 1; }
  case "$drill" in
    kill-idp-worker)
      master=$(cat "$RUN/idp.pid" 2>/dev/null || true)
      pid=
      [ -n "$master" ] && pid=$(ps -o pid= --ppid "$master" 2>/dev/null | head -n 1 | tr -d ' ')
      [ -n "$pid" ] || { echo "no IdP worker found (gunicorn master: ${master:-none})" >&2; exit 1; }
      kill -KILL "$pid"
      log "killed IdP worker $pid with -9; gunicorn master $master starts another" ;;
    kill-ekyc-worker)
      pid=$(cat "$RUN/ekyc-worker-${arg:-1}.child" 2>/dev/null || true)
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        || { echo "eKYC worker ${arg:-1} is not running" >&2; exit 1; }
      kill -KILL "$pid"
      log "killed eKYC worker ${arg:-1} ($pid) with -9; it is restarted in 1 s" ;;
    restart-redis)
      redis_stop
      log "Redis stopped (AOF written); down for ${arg:-0} s"
      sleep "${arg:-0}"
      redis_start
      log "Redis started on :$REDIS_PORT" ;;
    restart-postgres)
      as_postgres "$PGBIN/pg_ctl -D $PGDATA -m fast -w stop" >/dev/null
      log "PostgreSQL stopped (-m fast: every session cut); down for ${arg:-0} s"
      sleep "${arg:-0}"
      pg_start
      log "PostgreSQL started on :$PG_PORT" ;;
    register-down)
      pid=$(cat "$RUN/register.pid" 2>/dev/null || true)
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        || { log "register stub is not running"; return 0; }
      kill -TERM "$pid"
      wait_gone "$pid" 35 || kill -KILL "$pid" 2>/dev/null || true
      rm -f "$RUN/register.pid"
      log "register stub stopped" ;;
    register-up)
      pid=$(cat "$RUN/register.pid" 2>/dev/null || true)
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        log "register stub is already running"; return 0
      fi
      register_start
      wait_http register "http://$HOST:$REGISTER_PORT/healthz"
      log "register stub started on :$REGISTER_PORT" ;;
    *)
      echo "usage: $0 fault kill-idp-worker | kill-ekyc-worker [N] | restart-redis [SECONDS]" \
           "| restart-postgres [SECONDS] | register-down | register-up" >&2
      exit 2 ;;
  esac
}

case "${1:-start}" in
  start) start ;;
  stop)
    mkdir -p "$RUN" "$LOGS"
    main=$(cat "$RUN/stack.pid.main" 2>/dev/null || true)
    stop_all
    rm -f "$RUN/stack.pid.main"
    [ -n "$main" ] && kill -TERM "$main" 2>/dev/null || true
    log "stopped" ;;
  status) status ;;
  fault) shift; fault "$@" ;;
  *) echo "usage: $0 [start|stop|status|fault DRILL [ARG]]" >&2; exit 2 ;;
esac
