#!/usr/bin/env bash
# A throwaway PostgreSQL 15 (Debian's packages) in a temporary folder on a free 127.0.0.1 port,
# for the tests of the PostgreSQL runs store. Two ways to use it:
#
#   tests/e2e/pg_cluster.sh CMD [ARGS...]   runs CMD with SEGLOSS_TEST_POSTGRES set to the URL of
#                                           a fresh database, then stops and removes the cluster
#   . tests/e2e/pg_cluster.sh               (sourced) defines the functions below; the caller
#                                           calls pg_cluster_stop from its EXIT trap
#
#   pg_cluster_start          initdb + start; sets PG_DIR, PG_PORT, PG_URL (database postgres)
#   pg_cluster_createdb NAME  a new database; prints its URL
#   pg_cluster_server_stop    stops the server (files kept), pg_cluster_server_start starts it
#   pg_cluster_stop           stops the server and removes the folder
#
# initdb refuses to run as root: as root the cluster belongs to the postgres user (made by the
# postgresql package) or else nobody, and the folder is chowned to it. Authentication is trust,
# so the server listens on 127.0.0.1 only and its Unix socket lives in the private folder. A
# watchdog stops the server if the calling shell dies without running its trap (kill -9).
# When the binaries are missing and this runs as root, the postgresql package is installed.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=""
PG_PORT=""
PG_URL=""
PG_USER_OS=""
PG_WATCHDOG=""

pg__as_owner() {
    if [ -n "$PG_USER_OS" ]; then
        runuser -u "$PG_USER_OS" -- "$@"
    else
        "$@"
    fi
}

pg__free_port() {
    "$(command -v /usr/bin/python3 || command -v python3)" -c \
        'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_cluster_start() {
    if [ ! -x "$PG_BIN/initdb" ]; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
            echo "pg_cluster: installing postgresql" >&2
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
                --no-install-recommends postgresql >/dev/null 2>&1 ||
                { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null 2>&1 &&
                  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install \
                      -y -q --no-install-recommends postgresql >/dev/null 2>&1; }
        fi
        if [ ! -x "$PG_BIN/initdb" ]; then
            echo "pg_cluster: $PG_BIN/initdb not found (apt-get install postgresql)" >&2
            return 1
        fi
    fi
    PG_DIR=$(mktemp -d /tmp/segloss_pg_XXXXXX) || return 1
    if [ "$(id -u)" -eq 0 ]; then
        if id postgres >/dev/null 2>&1; then PG_USER_OS=postgres; else PG_USER_OS=nobody; fi
        chown "$PG_USER_OS" "$PG_DIR"
    fi
    chmod 700 "$PG_DIR"
    if ! pg__as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U segloss --auth=trust --no-sync \
            --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 &&
       ! pg__as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U segloss --auth=trust --no-sync \
            --encoding=UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1; then
        echo "pg_cluster: initdb failed: $(tail -n 5 "$PG_DIR/initdb.log")" >&2
        return 1
    fi
    PG_PORT=$(pg__free_port)
    PG_URL="postgres://segloss@127.0.0.1:$PG_PORT/postgres"
    pg_cluster_server_start || return 1
    # stop the server if the shell that started it dies without its trap
    local parent=$$ dir=$PG_DIR user=$PG_USER_OS bin=$PG_BIN
    (
        trap '' HUP INT TERM
        while kill -0 "$parent" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
        if [ -d "$dir/data" ]; then
            if [ -n "$user" ]; then
                runuser -u "$user" -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop
            else
                "$bin/pg_ctl" -D "$dir/data" -m immediate stop
            fi
            rm -rf "$dir"
        fi
    ) >/dev/null 2>&1 </dev/null &
    PG_WATCHDOG=$!
    disown "$PG_WATCHDOG" 2>/dev/null || true
    return 0
}

pg_cluster_server_start() {
    if ! pg__as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_DIR \
                -c max_connections=100 -c shared_buffers=32MB" start >/dev/null 2>&1; then
        echo "pg_cluster: the server did not start: $(tail -n 5 "$PG_DIR/server.log")" >&2
        return 1
    fi
}

pg_cluster_server_stop() {
    pg__as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1
}

pg_cluster_createdb() {
    "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 "$PG_URL" -c "CREATE DATABASE \"$1\"" >/dev/null ||
        return 1
    echo "postgres://segloss@127.0.0.1:$PG_PORT/$1"
}

pg_cluster_stop() {
    [ -n "$PG_DIR" ] || return 0
    if [ -d "$PG_DIR/data" ]; then
        pg__as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop \
            >/dev/null 2>&1
    fi
    [ -n "$PG_WATCHDOG" ] && kill "$PG_WATCHDOG" 2>/dev/null
    rm -rf "$PG_DIR"
    PG_DIR=""
}

# Run directly: a cluster around one command.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    trap pg_cluster_stop EXIT
    trap 'exit 130' INT TERM
    pg_cluster_start || exit 1
    SEGLOSS_TEST_POSTGRES=$(pg_cluster_createdb segloss_test) || exit 1
    export SEGLOSS_TEST_POSTGRES
    if [ $# -eq 0 ]; then
        echo "PostgreSQL at $SEGLOSS_TEST_POSTGRES (Ctrl-C stops it)"
        while :; do sleep 3600; done
    fi
    "$@"
fi
