#!/usr/bin/env bash
# Local S3-compatible server for cdphub's s3:// tests.
#
# The server is moto's S3 backend (from PyPI, pinned in
# scripts/python-requirements.txt), run in the project virtualenv <repo>/.venv
# on 127.0.0.1, plain HTTP, path-style addressing, with fixed test credentials.
# It keeps everything in memory: a restart starts from an empty store.
#
# Usage:
#   scripts/s3-server.sh install        create/update <repo>/.venv from the requirements
#   scripts/s3-server.sh start [PORT]   start in the background, create the bucket, print
#                                       `export NAME=value` lines:  eval "$(scripts/s3-server.sh start)"
#                                       PORT omitted: $CDPHUB_TEST_S3_PORT or 19090, or a free port
#                                       if that one is busy; PORT=auto: a free port; PORT=N: exactly N
#                                       (error if busy). Already running: prints its exports again.
#   scripts/s3-server.sh env            print the export lines of the running server again
#   scripts/s3-server.sh status         say whether it runs (exit 0) or not (exit 1)
#   scripts/s3-server.sh stop           stop it (no error if it is not running)
#
# Only the export lines go to stdout; progress and errors go to stderr.
# State (pid, port, log, env file) lives in <repo>/.ci/cache/s3-server/ unless
# CDPHUB_S3_STATE_DIR says otherwise.
#
# Why not moto's own `moto_server` command: it serves requests on many threads
# and checks `If-None-Match: *` before it stores the object in a separate step,
# so two concurrent conditional PUTs of the same key can both succeed (seen in
# practice under load). Delta Lake commits rely on exactly that check
# (object_store PutMode::Create), so the launcher below runs moto's WSGI app
# behind one lock: requests are handled one at a time and a conditional create
# is atomic. Throughput is ample for tests.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
VENV="$REPO_ROOT/.venv"
VENV_PY="$VENV/bin/python"
REQUIREMENTS="$SCRIPT_DIR/python-requirements.txt"
STAMP="$VENV/.cdphub-requirements.stamp"
STATE_DIR="${CDPHUB_S3_STATE_DIR:-$REPO_ROOT/.ci/cache/s3-server}"
PID_FILE="$STATE_DIR/server.pid"
PORT_FILE="$STATE_DIR/server.port"
ENV_FILE="$STATE_DIR/env.sh"
LOG_FILE="$STATE_DIR/server.log"

HOST=127.0.0.1
DEFAULT_PORT="${CDPHUB_TEST_S3_PORT:-19090}"
BUCKET=cdphub-test
ACCESS_KEY_ID=cdphub-test
SECRET_ACCESS_KEY=cdphub-test-secret
REGION=us-east-1
# Seconds to wait for the server to answer; it usually takes about 2 s, the
# margin is for a machine busy compiling.
START_TIMEOUT="${CDPHUB_S3_START_TIMEOUT:-30}"
# Marker passed on the server's command line, so `stop` never signals a
# process that merely reused a stale pid.
MARKER=cdphub-s3-server

log() { printf 's3-server: %s\n' "$*" >&2; }
die() {
    printf 's3-server: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    # The usage block of the header comment.
    sed -n '/^# Usage:/,/^# CDPHUB_S3_STATE_DIR/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

# ---------------------------------------------------------------- install ---

requirements_hash() {
    # The venv is rebuilt when the requirements or the interpreter change.
    {
        cat "$REQUIREMENTS"
        python3 -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

venv_works() {
    [[ -x "$VENV_PY" ]] && "$VENV_PY" -c 'import moto, boto3, flask, flask_cors' >/dev/null 2>&1
}

cmd_install() {
    [[ -f "$REQUIREMENTS" ]] || die "requirements file not found: $REQUIREMENTS"
    command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH (Python >= 3.11 is needed)"
    python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
        die "Python >= 3.11 is needed, found $(python3 --version 2>&1)"

    local want
    want="$(requirements_hash)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && venv_works; then
        log "virtualenv $VENV is up to date"
        return 0
    fi

    if [[ -d "$VENV" ]]; then
        local venv_version host_version
        venv_version="$("$VENV_PY" -c 'import sys; print(sys.version)' 2>/dev/null || true)"
        host_version="$(python3 -c 'import sys; print(sys.version)')"
        if [[ "$venv_version" != "$host_version" ]]; then
            log "virtualenv $VENV is broken or from another Python; recreating it"
            rm -rf -- "$VENV"
        fi
    fi
    if [[ ! -d "$VENV" ]]; then
        log "creating virtualenv $VENV"
        python3 -m venv "$VENV" ||
            die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi

    log "installing $REQUIREMENTS into $VENV (first run takes a minute)"
    rm -f -- "$STAMP"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV_PY" -m pip install --no-input --quiet \
        -r "$REQUIREMENTS" >&2 || die "pip install -r $REQUIREMENTS failed"
    "$VENV_PY" -m pip check >&2 || die "pip check found conflicting requirements"
    venv_works || die "moto/boto3 still not importable from $VENV after install"
    printf '%s\n' "$want" >"$STAMP"
    log "virtualenv $VENV is ready"
}

# ------------------------------------------------------------ server state ---

# Prints the pid of our running server, or fails.
running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/cmdline" ]]; then
        local cmdline
        cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
        [[ "$cmdline" == *"$MARKER"* ]] || return 1
    fi
    printf '%s\n' "$pid"
}

clear_state() {
    rm -f -- "$PID_FILE" "$PORT_FILE" "$ENV_FILE"
}

print_env() {
    local port="$1"
    cat <<EOF
export CDPHUB_TEST_S3_ENDPOINT=http://$HOST:$port
export CDPHUB_TEST_S3_BUCKET=$BUCKET
export AWS_ACCESS_KEY_ID=$ACCESS_KEY_ID
export AWS_SECRET_ACCESS_KEY=$SECRET_ACCESS_KEY
export AWS_REGION=$REGION
export AWS_DEFAULT_REGION=$REGION
export AWS_ENDPOINT_URL=http://$HOST:$port
export AWS_ALLOW_HTTP=true
EOF
}

# ------------------------------------------------------------------ start ---

# moto's S3 app behind a single lock (see the header comment), on werkzeug.
# argv: MARKER HOST PORT
read -r -d '' LAUNCHER <<'PY' || true
import os
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

_marker, host, port = sys.argv[1:4]
os.environ.setdefault("MOTO_PORT", port)
moto_app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialized_app(environ, start_response):
    # Read the request, run it and materialise the response under one lock,
    # so a precondition check and the write it guards cannot interleave with
    # another request.
    with lock:
        result = moto_app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    return [body]


run_simple(host, int(port), serialized_app, threaded=True,
           request_handler=MotoRequestHandler)
PY

# Waits until the server answers, then creates the bucket (idempotent).
# argv: ENDPOINT BUCKET PID TIMEOUT KEY SECRET REGION
read -r -d '' READY_CHECK <<'PY' || true
import os
import sys
import time

import boto3
import botocore.exceptions
from botocore.config import Config

endpoint, bucket, pid, timeout, key, secret, region = sys.argv[1:8]
pid, deadline = int(pid), time.monotonic() + float(timeout)
s3 = boto3.client(
    "s3", endpoint_url=endpoint, aws_access_key_id=key,
    aws_secret_access_key=secret, region_name=region,
    config=Config(s3={"addressing_style": "path"}, connect_timeout=1,
                  read_timeout=5, retries={"max_attempts": 1}),
)
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("server process exited during startup")
    try:
        s3.create_bucket(Bucket=bucket)
        break
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        break
    except (botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError):
        if time.monotonic() > deadline:
            sys.exit(f"server did not answer on {endpoint} within {timeout}s")
        time.sleep(0.1)
PY

port_is_free() {
    # SO_REUSEADDR as werkzeug uses it: only a listening socket makes the port
    # busy, not connections of a previous run lingering in TIME_WAIT.
    "$VENV_PY" - "$HOST" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

free_port() {
    "$VENV_PY" - "$HOST" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind((sys.argv[1], 0))
print(s.getsockname()[1])
s.close()
PY
}

valid_port() {
    [[ "$1" =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535))
}

# start [PORT]: PORT omitted -> the default port, or a free one if that is
# busy; PORT=auto -> a free port; PORT=N -> exactly N, or an error if busy.
cmd_start() {
    local requested="${1:-}" mode port
    if [[ -z "$requested" ]]; then
        mode=default
        valid_port "$DEFAULT_PORT" || die "invalid CDPHUB_TEST_S3_PORT '$DEFAULT_PORT' (expected 1..65535)"
        port=$((10#$DEFAULT_PORT))
    elif [[ "$requested" == auto ]]; then
        mode=auto
        port=
    else
        mode=explicit
        valid_port "$requested" || die "invalid port '$requested' (expected 1..65535 or 'auto')"
        port=$((10#$requested))
    fi

    cmd_install
    mkdir -p -- "$STATE_DIR"

    local pid
    if pid="$(running_pid)"; then
        local old_port
        old_port="$(cat "$PORT_FILE" 2>/dev/null || true)"
        if [[ "$mode" == explicit && "$old_port" != "$port" ]]; then
            die "already running (pid $pid) on port ${old_port:-?}; run '$0 stop' first or use that port"
        fi
        [[ "$old_port" =~ ^[0-9]+$ ]] || die "state file $PORT_FILE is damaged; run '$0 stop' first"
        port="$old_port"
        log "already running (pid $pid) on $HOST:$port"
    else
        clear_state
        if [[ "$mode" == auto ]]; then
            port="$(free_port)"
        elif ! port_is_free "$port"; then
            [[ "$mode" == default ]] ||
                die "port $port on $HOST is already in use; pick another: $0 start PORT (or: $0 start auto)"
            local busy="$port"
            port="$(free_port)"
            log "default port $busy on $HOST is in use; using free port $port instead"
        fi
        log "starting moto S3 server on $HOST:$port (log: $LOG_FILE)"
        : >"$LOG_FILE"
        nohup "$VENV_PY" -c "$LAUNCHER" "$MARKER" "$HOST" "$port" \
            >>"$LOG_FILE" 2>&1 </dev/null &
        pid=$!
        printf '%s\n' "$pid" >"$PID_FILE"
        printf '%s\n' "$port" >"$PORT_FILE"
    fi

    local t0=$SECONDS
    if ! "$VENV_PY" -c "$READY_CHECK" "http://$HOST:$port" "$BUCKET" "$pid" "$START_TIMEOUT" \
        "$ACCESS_KEY_ID" "$SECRET_ACCESS_KEY" "$REGION" >&2; then
        log "server log ($LOG_FILE), last lines:"
        tail -n 30 "$LOG_FILE" >&2 || true
        kill "$pid" 2>/dev/null || true
        clear_state
        die "S3 server failed to start on $HOST:$port"
    fi
    log "ready after $((SECONDS - t0))s: pid $pid, bucket '$BUCKET'"

    print_env "$port" >"$ENV_FILE"
    print_env "$port"
}

# ------------------------------------------------------------ stop/status ---

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        log "not running"
        clear_state
        return 0
    fi
    log "stopping pid $pid"
    kill "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not exit after SIGTERM; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    clear_state
    log "stopped"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        log "running: pid $pid on $HOST:$(cat "$PORT_FILE" 2>/dev/null || echo '?')"
    else
        log "not running"
        return 1
    fi
}

cmd_env() {
    running_pid >/dev/null || die "not running; start it with: $0 start [PORT]"
    print_env "$(cat "$PORT_FILE")"
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        install) [[ $# -eq 0 ]] || die "install takes no arguments"; cmd_install ;;
        start) [[ $# -le 1 ]] || die "usage: $0 start [PORT]"; cmd_start "$@" ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        -h | --help | help) usage ;;
        *) usage; die "unknown command '${cmd}'" ;;
    esac
}

main "$@"
