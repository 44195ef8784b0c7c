#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests, never a system service.
#   start STATE  creates a cluster in a new temporary directory (as user nobody when run as root:
#                the server refuses root), listening on a free loopback port only, and writes its
#                URL and directory to STATE, two lines
#   stop STATE   stops the cluster STATE names and removes its directory and STATE
#   down STATE   stops its server, keeping everything (a test's outage)
#   up STATE     starts that server again on the same port
#   freeze STATE stops (SIGSTOP) its server and every backend: a database that keeps its
#                connections and never answers, as a hung host or a black-holed path does
#   thaw STATE   lets them run again (SIGCONT)
set -euo pipefail
action="$1" state="$2"
bin=/usr/lib/postgresql/15/bin
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}
stop() {
  [ -f "$state" ] || return 0
  local dir
  dir="$(sed -n 2p "$state")"
  if [ -n "$dir" ] && [ -d "$dir/data" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  [ -n "$dir" ] && rm -rf "$dir"
  rm -f "$state"
}
# Starts the server of the cluster in DIR on PORT.
serve() {
  local dir="$1" port="$2"
  # Loopback TCP only, its socket in its own directory; durability is not under test, speed is.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
}
# Sends SIGNAL to the server and to every process it started; the server first when stopping, so
# that it starts none meanwhile, and last when continuing.
signal_server() {
  local signal="$1" server children
  server="$(sed -n 1p "$(sed -n 2p "$state")/data/postmaster.pid")"
  [ "$signal" = CONT ] || kill -STOP "$server"
  children="$(ps -o pid= --ppid "$server" || true)"
  # shellcheck disable=SC2086 # one process id a word
  [ -z "$children" ] || kill "-$signal" $children
  [ "$signal" = STOP ] || kill -CONT "$server"
}
port_of() { sed -n 1p "$state" | sed -E 's|.*:([0-9]+)/.*|\1|'; }
case "$action" in
start)
  [ -x "$bin/initdb" ] || { echo "postgres_cluster: no $bin/initdb; run tools/install-deps.sh" >&2; exit 1; }
  stop # a cluster a crashed run left behind
  dir="$(mktemp -d /tmp/emr-postgres.XXXXXX)"
  [ "$(id -u)" -eq 0 ] && chown nobody "$dir"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  printf 'postgresql://emr@127.0.0.1:%s/postgres\n%s\n' "$port" "$dir" >"$state"
  as_owner "$bin/initdb" -D "$dir/data" -U emr --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  serve "$dir" "$port"
  ;;
down)
  as_owner "$bin/pg_ctl" -D "$(sed -n 2p "$state")/data" -m fast -w stop >/dev/null
  ;;
up)
  serve "$(sed -n 2p "$state")" "$(port_of)"
  ;;
stop)
  stop
  ;;
freeze)
  signal_server STOP
  ;;
thaw)
  signal_server CONT
  ;;
*)
  echo "usage: $0 start|stop|down|up|freeze|thaw STATE" >&2
  exit 2
  ;;
esac
