#!/usr/bin/env bash
# build_and_check.sh - builds the segloss container image and checks it for real
# (`make container-check` runs it; .ci/run runs it after `make check`).
#
#   1. tools: podman, buildah, debootstrap (installed with apt-get when run as root)
#   2. base image: debian:bookworm-slim from a registry when one answers, otherwise built from
#      Debian packages (debootstrap --variant=minbase from the host's apt mirror, trimmed like
#      the official slim image) and imported with `podman import`; kept in podman's store, so
#      later runs skip this
#   3. which podman flags this machine needs (probed with a trivial container; see below)
#   4. buildah bud --layers --format docker --network=host -f docker/Dockerfile (the build
#      stage compiles and runs the unit tests)
#   5. the image's configuration: numeric non-root user, port 8080, /data volume,
#      exec-form entrypoint, HEALTHCHECK
#   6. podman run --read-only (as Kubernetes runs it) on 127.0.0.1: /livez, /readyz, the
#      HEALTHCHECK command, one real evaluation compared with its golden expected.json,
#      the uid of the process, /data writable, SIGTERM drain and exit 0 on `podman stop`
#
# Prints "N passed, N failed" last; exits non-zero on any failure. Removes what it started.
#
# Environment:
#   SEGLOSS_IMAGE           tag of the built image (default localhost/segloss:check)
#   SEGLOSS_CHECK_PORT      host port on 127.0.0.1 (default: a free one)
#   SEGLOSS_DEBIAN_MIRROR   Debian mirror for debootstrap and apt (default: the host's)
#   SEGLOSS_SECURITY_MIRROR debian-security mirror (default: the host's, if it has one)
#   SEGLOSS_CONTEXT         worktree (default: the files as they are) or head (the sources of
#                           git HEAD, built with this docker/Dockerfile)
#   SEGLOSS_NO_PULL=1       never try a registry for the base image
#   SEGLOSS_REBUILD_BASE=1  rebuild the debootstrap base even when it exists
#   SEGLOSS_KEEP_IMAGE=0    remove the built image at the end (default: keep it)
#   SEGLOSS_BUILD_ARGS      extra buildah bud arguments, e.g. "--build-arg RUN_TESTS=0" to
#                           look at the image while a unit test is failing (not for CI)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
IMAGE=${SEGLOSS_IMAGE:-localhost/segloss:check}
BASE=debian:bookworm-slim
GOLDEN=tests/golden/voc_palette_weighted
NAME=segloss-check-$$
START=$(date +%s)

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
note() { echo "     $*"; }
elapsed() { echo "$(($(date +%s) - START)) s"; }
summary() {
    echo "container-check took $(elapsed)"
    echo "$pass passed, $fail failed"
}

TMP=$(mktemp -d /var/tmp/segloss-check.XXXXXX) || exit 2
container_started=0
cleanup() {
    if [ "$container_started" = 1 ]; then
        # -v: with its anonymous /data volume
        podman rm -f -v -t 0 "$NAME" >/dev/null 2>&1 || podman rm -f -v "$NAME" >/dev/null 2>&1
    fi
    if [ "${SEGLOSS_KEEP_IMAGE:-1}" = 0 ]; then
        podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
    fi
    # a debootstrap that failed midway may leave /proc or /sys mounted in its tree
    if [ -d "$TMP" ]; then
        if command -v findmnt >/dev/null 2>&1; then
            findmnt -rn -o TARGET | grep "^$TMP/" | sort -r | while read -r m; do
                umount -l "$m" 2>/dev/null || true
            done
        fi
        rm -rf --one-file-system "$TMP"
    fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

# ---- 1. tools ------------------------------------------------------------------------------
need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing: ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" \
            >"$TMP/apt.log" 2>&1 || { tail -n 20 "$TMP/apt.log"; }
    else
        echo "container-check needs Debian packages; run:"
        echo "  sudo apt-get install -y --no-install-recommends ${need[*]}"
    fi
fi
missing=0
for t in podman buildah curl python3; do
    command -v "$t" >/dev/null 2>&1 || { bad "tool $t is not installed"; missing=1; }
done
if [ "$missing" = 1 ]; then summary; exit 1; fi
ok "tools: $(podman --version), $(buildah --version | cut -d' ' -f1-3)"

# ---- 2. base image -------------------------------------------------------------------------
# The Debian mirror this machine's apt uses (deb822 .sources or one-line .list files).
host_uris() {
    {
        grep -hsE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources |
            sed -E 's/^[[:space:]]*URIs:[[:space:]]*//' | tr ' ' '\n'
        grep -hsE '^[[:space:]]*deb[[:space:]]' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
            sed -E 's/\[[^]]*\]//' | awk '{print $2}'
    } | sed -E 's#/+$##' | grep -E '^https?://' || true
}
MIRROR=${SEGLOSS_DEBIAN_MIRROR:-$(host_uris | grep -E '/debian$' | head -n 1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${SEGLOSS_SECURITY_MIRROR:-$(host_uris | grep -E '/debian-security$' | head -n 1)}

build_base() {
    local dir=$TMP/rootfs
    if [ "$(id -u)" -ne 0 ]; then
        bad "no $BASE image and debootstrap needs root; run this script as root once"
        return 1
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        bad "debootstrap is not installed"
        return 1
    fi
    note "debootstrap --variant=minbase bookworm from $MIRROR (a few minutes)"
    local t0
    t0=$(date +%s)
    if ! nice -n 10 debootstrap --variant=minbase bookworm "$dir" "$MIRROR" \
        >"$TMP/debootstrap.log" 2>&1; then
        tail -n 20 "$TMP/debootstrap.log"
        bad "debootstrap failed (log above)"
        return 1
    fi
    # Trim it like the official slim image, and keep later apt-get installs slim too.
    mkdir -p "$dir/etc/dpkg/dpkg.cfg.d" "$dir/etc/apt/apt.conf.d"
    cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
    cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
    rm -f "$dir/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\n' "$MIRROR"
        printf 'Components: main\n'
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        if [ -n "$SECURITY" ]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\n' "$SECURITY"
            printf 'Components: main\n'
            printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        fi
    } >"$dir/etc/apt/sources.list.d/debian.sources"
    find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null
    find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null
    rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/groff/* "$dir"/usr/share/info/* \
        "$dir"/usr/share/lintian/* "$dir"/usr/share/linda/* "$dir"/usr/share/locale/* \
        "$dir"/var/cache/apt/* "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log \
        "$dir"/var/log/apt/* "$dir"/tmp/* "$dir"/root/.bash_history
    : >"$dir/etc/machine-id" 2>/dev/null
    if ! tar --numeric-owner --xattrs -C "$dir" -c . |
        podman import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' \
            --message "debootstrap --variant=minbase bookworm $MIRROR" \
            - "$BASE" >/dev/null; then
        bad "podman import of the debootstrap tree failed"
        return 1
    fi
    rm -rf --one-file-system "$dir"
    ok "base image $BASE built with debootstrap and imported in $(($(date +%s) - t0)) s"
}

if [ "${SEGLOSS_REBUILD_BASE:-0}" = 1 ]; then
    podman rmi -f "$BASE" >/dev/null 2>&1 || true
fi
if podman image exists "$BASE"; then
    base_id=$(podman image inspect --format '{{.Id}}' "$BASE" | cut -c1-12)
    ok "base image $BASE present ($base_id); not rebuilt"
elif [ "${SEGLOSS_NO_PULL:-0}" != 1 ] &&
    timeout 300 podman pull -q "docker.io/library/$BASE" >"$TMP/pull.log" 2>&1; then
    ok "base image $BASE pulled from docker.io"
else
    if [ "${SEGLOSS_NO_PULL:-0}" != 1 ]; then
        note "no registry: $(tail -n 1 "$TMP/pull.log" 2>/dev/null | cut -c1-90)"
    fi
    if ! build_base; then summary; exit 1; fi
fi

# ---- 3. how containers run here --------------------------------------------------------------
# Sandboxed machines differ from a laptop. Observed on the CI VMs: crun 1.8 refuses a hybrid
# cgroup v1/v2 layout ("cgroups in hybrid mode not supported"), and root lacks CAP_SYS_RESOURCE,
# so podman's default rlimits (nofile 1048576, nproc 4194304) cannot be set ("setrlimit
# RLIMIT_NOFILE: Operation not permitted"). Probe the plain setting first, then runc with
# rlimits within the current hard limits; the same flags go to buildah (for RUN) and podman.
hard_nofile=$(ulimit -Hn)
[[ "$hard_nofile" =~ ^[0-9]+$ ]] && [ "$hard_nofile" -le 65536 ] || hard_nofile=65536
ULIMITS=(--ulimit "nofile=$hard_nofile:$hard_nofile" --ulimit nproc=4096:4096)
probe_candidates=("" "ulimits" "runc ulimits")
RT_FLAGS=()
probe_ok=0
for cand in "${probe_candidates[@]}"; do
    flags=()
    [[ "$cand" == *runc* ]] && flags+=(--runtime runc)
    [[ "$cand" == *ulimits* ]] && flags+=("${ULIMITS[@]}")
    if [[ "$cand" == *runc* ]] && ! command -v runc >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ]; then
            note "installing runc"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends runc \
                >"$TMP/apt-runc.log" 2>&1 || tail -n 5 "$TMP/apt-runc.log"
        else
            note "runc may be needed: sudo apt-get install -y --no-install-recommends runc"
        fi
    fi
    if out=$(podman run --rm "${flags[@]}" "$BASE" true 2>&1); then
        RT_FLAGS=("${flags[@]}")
        probe_ok=1
        break
    fi
    note "podman run ${flags[*]:-(default flags)}: $(echo "$out" | tail -n 1 | cut -c1-150)"
done
if [ "$probe_ok" = 1 ]; then
    ok "containers run here with: podman run ${RT_FLAGS[*]:-(default flags)}"
else
    bad "no podman run setting works on this machine (see above)"
    summary
    exit 1
fi

# ---- 4. build ------------------------------------------------------------------------------
CONTEXT=$ROOT
if [ "${SEGLOSS_CONTEXT:-worktree}" = head ]; then
    CONTEXT=$TMP/context
    mkdir -p "$CONTEXT"
    if ! git -C "$ROOT" archive HEAD | tar -x -C "$CONTEXT"; then
        bad "git archive HEAD failed"
        summary
        exit 1
    fi
    note "building from git HEAD $(git -C "$ROOT" rev-parse --short HEAD)"
fi
note "buildah bud: apt-get inside the build, compile, unit tests (its log is shown on failure)"
t0=$(date +%s)
# --network=host: apt-get in the build reaches the mirror exactly as the host does.
# --format docker: keeps HEALTHCHECK (the OCI format has no field for it).
# --layers: the apt-get layers are cached; a source change rebuilds from COPY on.
if nice -n 10 buildah bud --layers --force-rm --format docker --network=host "${RT_FLAGS[@]}" \
    ${SEGLOSS_BUILD_ARGS:-} -f "$ROOT/docker/Dockerfile" -t "$IMAGE" "$CONTEXT" \
    >"$TMP/build.log" 2>&1; then
    ok "buildah bud -f docker/Dockerfile -t $IMAGE in $(($(date +%s) - t0)) s"
    grep -E '^(ok|FAIL) +build/tests/|^unit test programs:' "$TMP/build.log" | sed 's/^/     /'
    # earlier builds' layers that nothing references any more (only this Dockerfile's: the
    # label filter leaves other images alone)
    podman image prune -f --filter label=io.segloss.stage >/dev/null 2>&1 || true
else
    tail -n 60 "$TMP/build.log"
    bad "buildah bud failed (the last lines of its log are above)"
    summary
    exit 1
fi

# ---- 5. image configuration ----------------------------------------------------------------
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
note "image $IMAGE: $((size / 1000000)) MB ($size bytes)"
base_size=$(podman image inspect --format '{{.Size}}' "$BASE" 2>/dev/null || echo 0)
note "base $BASE: $((base_size / 1000000)) MB; segloss adds $(((size - base_size) / 1000000)) MB"
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
uid=${user%%:*}
if [[ "$uid" =~ ^[0-9]+$ ]] && [ "$uid" -ne 0 ]; then
    ok "image USER is numeric and non-root ($user)"
else
    bad "image USER '$user' is not a numeric non-root uid"
fi
entry=$(podman image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE")
[ "$entry" = '["/usr/local/bin/seglossd"]' ] && ok "exec-form ENTRYPOINT $entry" ||
    bad "ENTRYPOINT is $entry"
ports=$(podman image inspect --format '{{json .Config.ExposedPorts}}' "$IMAGE")
[[ "$ports" == *'"8080/tcp"'* ]] && ok "EXPOSE 8080 ($ports)" || bad "exposed ports: $ports"
vols=$(podman image inspect --format '{{json .Config.Volumes}}' "$IMAGE")
[[ "$vols" == *'"/data"'* ]] && ok "VOLUME /data" || bad "volumes: $vols"
hc=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" 2>/dev/null)
[[ "$hc" == *'seglossd'*'healthcheck'* ]] && ok "HEALTHCHECK $hc" || bad "HEALTHCHECK missing: $hc"

# ---- 6. run --------------------------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=${SEGLOSS_CHECK_PORT:-$(free_port)}
URL=http://127.0.0.1:$PORT

wait_livez() { # seconds
    local i
    for ((i = 0; i < $1 * 5; i++)); do
        curl -fsS -m 2 -o /dev/null "$URL/livez" 2>/dev/null && return 0
        [ "$(podman inspect --format '{{.State.Running}}' "$NAME" 2>/dev/null)" = true ] || return 1
        sleep 0.2
    done
    return 1
}

# --read-only with a tmpfs /tmp, as the Kubernetes manifest runs it (readOnlyRootFilesystem);
# /data is the image's VOLUME (an anonymous volume here).
run_flags=("${RT_FLAGS[@]}" --read-only --tmpfs /tmp:rw,size=64m,mode=1777 --cap-drop=ALL
    --security-opt=no-new-privileges)
mode=""
container_started=1
if podman run -d --name "$NAME" "${run_flags[@]}" -p "127.0.0.1:$PORT:8080" "$IMAGE" \
    >"$TMP/run.log" 2>&1 && wait_livez 30; then
    mode="-p 127.0.0.1:$PORT:8080 (bridge network, port mapped to loopback)"
else
    note "port mapping did not work: $(tail -n 2 "$TMP/run.log" | tr '\n' ' ')"
    podman logs "$NAME" 2>&1 | tail -n 5 | sed 's/^/     /'
    podman rm -f -v "$NAME" >/dev/null 2>&1
    # The host's network namespace: the daemon itself must listen on loopback only.
    if podman run -d --name "$NAME" "${run_flags[@]}" --network=host \
        -e SEGLOSS_BIND=127.0.0.1 -e SEGLOSS_PORT="$PORT" "$IMAGE" >"$TMP/run.log" 2>&1 &&
        wait_livez 30; then
        mode="--network=host with SEGLOSS_BIND=127.0.0.1 SEGLOSS_PORT=$PORT"
    fi
fi
if [ -n "$mode" ]; then
    ok "podman run $mode: GET /livez answers 200"
else
    cat "$TMP/run.log"
    podman logs "$NAME" 2>&1 | tail -n 20
    bad "the container did not answer /livez"
    summary
    exit 1
fi

code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$URL/readyz")
[ "$code" = 200 ] && ok "GET /readyz answers 200" || bad "GET /readyz answered $code"

# HEALTHCHECK: podman runs the image's command inside the container.
if out=$(podman healthcheck run "$NAME" 2>&1); then
    ok "podman healthcheck run (seglossd healthcheck inside the image) ${out:+($out)}"
else
    bad "podman healthcheck run failed: $out"
fi
if podman exec "$NAME" /usr/local/bin/seglossd healthcheck; then
    ok "podman exec seglossd healthcheck exits 0"
else
    bad "seglossd healthcheck exits non-zero"
fi
if podman exec "$NAME" sh -c 'command -v curl || command -v wget' >/dev/null 2>&1; then
    bad "the runtime image contains curl or wget"
else
    ok "no curl or wget in the runtime image"
fi

# One real evaluation through the published port.
code=$(curl -sS -m 60 -o "$TMP/answer.json" -w '%{http_code}' \
    -F "logits=@$GOLDEN/logits.npy" -F "mask=@$GOLDEN/mask_0.png" -F "mask=@$GOLDEN/mask_1.png" \
    -F "params=<$GOLDEN/params.json;type=application/json" "$URL/v1/evaluate")
if [ "$code" = 200 ]; then
    ok "POST /v1/evaluate $GOLDEN answers 200"
    if cmp_out=$(python3 - "$TMP/answer.json" "$GOLDEN/expected.json" <<'EOF'
import json, math, sys
got = json.load(open(sys.argv[1]))
exp = json.load(open(sys.argv[2]))
bad = []
checked = 0
def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
def pick(d, path):
    for k in path.split("."):
        d = d[k]
    return d
for path in ["loss.ce", "loss.focal", "loss.dice", "loss.total", "metrics.miou", "metrics.mpa",
             "metrics.accuracy", "metrics.mean_dice", "metrics.f_score"]:
    try:
        e = pick(exp, path)
    except KeyError:
        continue
    g = pick(got, path)
    checked += 1
    if not close(g, e):
        bad.append(f"{path}: {g} != {e}")
for key in ["dice", "iou", "f_score"]:
    e = exp.get("per_class", {}).get(key)
    if e is None:
        continue
    g = got["per_class"][key]
    checked += len(e)
    if len(g) != len(e) or not all(close(x, y) for x, y in zip(g, e)):
        bad.append(f"per_class.{key} differs")
for key in ["shape", "pixels", "num_classes"]:
    if key in exp:
        checked += 1
        if got.get(key) != exp[key]:
            bad.append(f"{key}: {got.get(key)} != {exp[key]}")
print(f"{checked} numbers within 1e-6 (loss.ce {got['loss']['ce']}, miou {got['metrics']['miou']})"
      if not bad else "; ".join(bad))
sys.exit(1 if bad else 0)
EOF
    ); then
        ok "evaluation matches expected.json: $cmp_out"
    else
        bad "evaluation differs from expected.json: $cmp_out"
    fi
else
    bad "POST /v1/evaluate answered $code: $(head -c 400 "$TMP/answer.json")"
fi

# The daemon runs as the image's non-root uid, inside and (rootful podman, no user namespace)
# on the host.
in_uid=$(podman exec "$NAME" sh -c 'awk "/^Uid:/{print \$2}" /proc/1/status' 2>/dev/null)
[ "$in_uid" = "$uid" ] && ok "PID 1 in the container runs as uid $in_uid" ||
    bad "PID 1 in the container runs as uid '$in_uid', not $uid"
hpid=$(podman inspect --format '{{.State.Pid}}' "$NAME")
host_uid=$(awk '/^Uid:/{print $2}' "/proc/$hpid/status" 2>/dev/null)
if [ "$(id -u)" -eq 0 ]; then
    if [ -n "$host_uid" ] && [ "$host_uid" -ne 0 ]; then
        ok "seglossd (host pid $hpid) runs as host uid $host_uid"
    else
        bad "seglossd runs as host uid '$host_uid'"
    fi
fi
if podman exec "$NAME" sh -c 'touch /data/.write-test && rm /data/.write-test' 2>/dev/null; then
    ok "/data is writable by uid $uid"
else
    bad "/data is not writable by uid $uid"
fi
if podman exec "$NAME" sh -c 'touch /usr/local/bin/x' 2>/dev/null; then
    bad "the root filesystem is writable despite --read-only"
else
    ok "read-only root filesystem (only /data and /tmp are writable)"
fi

# docker/k8s/deployment.yaml's preStop hook runs /bin/sleep in the image.
if podman exec "$NAME" /bin/sleep 0 2>/dev/null; then
    ok "/bin/sleep (the Kubernetes preStop pause) exists in the image"
else
    bad "/bin/sleep is missing: the Kubernetes preStop hook would fail"
fi

# SIGTERM: the daemon drains and exits 0 well before podman's SIGKILL deadline.
t0=$(date +%s)
podman stop -t 40 "$NAME" >/dev/null 2>&1
took=$(($(date +%s) - t0))
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
if [ "$exit_code" = 0 ] && [ "$took" -lt 30 ] && podman logs "$NAME" 2>&1 | grep -q 'stopped'; then
    ok "podman stop: SIGTERM drained, exit 0 in ${took} s"
else
    podman logs "$NAME" 2>&1 | tail -n 5 | sed 's/^/     /'
    bad "podman stop: exit code $exit_code after ${took} s"
fi

summary
[ "$fail" -eq 0 ]
