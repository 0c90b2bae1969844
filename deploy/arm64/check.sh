#!/usr/bin/env bash
# The emulated board check (`make arm64-check`): biolock installed and run on aarch64 under qemu-user-static.
#
#   sudo deploy/arm64/check.sh                     # Debian bookworm arm64, Python 3.11 (Raspberry Pi OS Bookworm)
#   sudo deploy/arm64/check.sh --target trixie     # Debian trixie arm64, Python 3.13
#   sudo deploy/arm64/check.sh --target jammy      # Ubuntu 22.04 arm64, Python 3.10 (JetPack 6)
#   options: --cache DIR (default $BIOLOCK_ARM64_CACHE or /var/cache/biolock-arm64), --rebuild (a fresh root),
#            --tests "FILES" (instead of every device-side test), --no-tests, --keep (leave the run's overlay),
#            --cpu CORE (qemu's CPU model: default cortex-a72 = Pi 4 for bookworm, cortex-a76 = Pi 5 for trixie/jammy)
#
# What it does, on a Debian or Ubuntu x86_64 host with root: installs qemu-user-static, binfmt-support and
# debootstrap from the distribution, registers aarch64 with binfmt_misc, builds (once; cached) a minimal arm64 root,
# and for every run: an overlay on that root, the committed tree (git archive HEAD) as a wheel, a venv with the
# `device,pi,minutiae` extras from wheels only (--only-binary=:all:), deploy/install.sh run for real inside it
# (udevadm/systemctl are logged, not run: no init in a chroot), then `biolock --help`, `demo`, `bench`, `status`,
# the unit/udev/user checks and the device-side tests. It prints a report and exits non-zero on any failure.
# See docs/boards.md.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
HELPER="$HERE/helper.py"
TARGET=bookworm
CACHE=${BIOLOCK_ARM64_CACHE:-/var/cache/biolock-arm64}
REBUILD=0
KEEP=0
TESTS=auto
EXTRAS=device,pi,minutiae
CPU=

die() { echo "arm64-check: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --target) TARGET=${2:?--target needs bookworm, trixie or jammy}; shift 2 ;;
        --target=*) TARGET=${1#*=}; shift ;;
        --cache) CACHE=${2:?--cache needs a directory}; shift 2 ;;
        --rebuild) REBUILD=1; shift ;;
        --keep) KEEP=1; shift ;;
        --tests) TESTS=${2:?--tests needs test files}; shift 2 ;;
        --no-tests) TESTS=none; shift ;;
        --cpu) CPU=${2:?--cpu needs a qemu CPU model, e.g. cortex-a72}; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

# --- preflight: what is missing, and how to get it ------------------------------------------------------------
command -v python3 >/dev/null || die "needs python3 on the host (apt-get install python3)"
TARGET_VARS=$(python3 "$HELPER" target "$TARGET") || exit 2
eval "$TARGET_VARS"
# qemu-user reads QEMU_CPU: emulate the board's core, not qemu's "max" (see helper.py TARGETS: with "max", XNNPACK's
# int8 kernels gave wrong embeddings here)
export QEMU_CPU=${CPU:-$QEMU_CPU_DEFAULT}
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount and binfmt registration): run sudo make arm64-check"
command -v apt-get >/dev/null && command -v dpkg >/dev/null \
    || die "needs a Debian or Ubuntu host (apt-get, dpkg) to install qemu-user-static, binfmt-support, debootstrap"
command -v git >/dev/null || die "needs git (the check installs the committed tree: apt-get install git)"
git -C "$REPO" rev-parse HEAD >/dev/null 2>&1 || die "$REPO is not a git checkout (the check installs git HEAD)"
HOST_ARCH=$(uname -m)
case "$HOST_ARCH" in
    x86_64|aarch64) ;;
    *) die "host architecture $HOST_ARCH: this check runs on x86_64 (under qemu) or natively on aarch64" ;;
esac

ROOTDIR="$CACHE/$TARGET"
ROOT="$ROOTDIR/root"
STAMP="$ROOTDIR/root.ok"
mkdir -p "$ROOTDIR" || die "cannot create the cache directory $ROOTDIR (set BIOLOCK_ARM64_CACHE or --cache)"
NEED_GIB=2
[ -f "$STAMP" ] && [ "$REBUILD" -eq 0 ] || NEED_GIB=4
AVAIL_KIB=$(df -Pk "$ROOTDIR" | awk 'NR==2 {print $4}')
[ "${AVAIL_KIB:-0}" -ge $((NEED_GIB * 1024 * 1024)) ] \
    || die "needs ${NEED_GIB} GiB free under $ROOTDIR, has $((${AVAIL_KIB:-0} / 1024 / 1024)) GiB: free space there" \
           "or point BIOLOCK_ARM64_CACHE (or --cache) at a bigger disk"

T_START=$(date +%s)
RUN=$(mktemp -d "/tmp/biolock-arm64-$TARGET.XXXXXX")
mkdir -p "$RUN/log"
: > "$RUN/steps.tsv"
FAILED=0
MNT="$RUN/mnt"
MOUNTS=()

cleanup() {
    local i
    for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null; done
    if [ "$KEEP" -eq 0 ]; then rm -rf "$RUN/upper" "$RUN/work" "$RUN/mnt" "$RUN/rootcopy"; fi
}
trap cleanup EXIT
trap 'echo "arm64-check: interrupted" >&2; exit 130' INT TERM

# step NAME DETAIL CMD...: runs CMD with its output in $RUN/log/NAME.log; records ok/FAIL and seconds.
step() {
    local name=$1 detail=$2 t0 rc
    shift 2
    t0=$(date +%s)
    printf '== %-22s ' "$name"
    "$@" > "$RUN/log/$name.log" 2>&1
    rc=$?
    local secs=$(( $(date +%s) - t0 ))
    if [ $rc -eq 0 ]; then
        printf 'ok   (%ss)\n' "$secs"
        printf '%s\tok\t%s\t%s\n' "$name" "$secs" "$detail" >> "$RUN/steps.tsv"
    else
        printf 'FAIL (%ss, exit %s)\n' "$secs" "$rc"
        printf '%s\tFAIL\t%s\t%s\n' "$name" "$secs" "$detail" >> "$RUN/steps.tsv"
        sed 's/^/   | /' "$RUN/log/$name.log" | tail -n 25
        FAILED=1
    fi
    return $rc
}

finish() {
    echo
    echo "---------------- arm64-check report ----------------"
    python3 "$HELPER" summary "$RUN"
    local rc=$?
    echo "logs: $RUN/log"
    [ $FAILED -eq 0 ] && [ $rc -eq 0 ] && exit 0
    exit 1
}

# --- host packages ------------------------------------------------------------------------------------------------
host_packages() {
    local pkgs="debootstrap $HOST_EXTRA_PKGS" missing="" p
    [ "$HOST_ARCH" = x86_64 ] && pkgs="qemu-user-static binfmt-support $pkgs"
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "installing:$missing"
        apt-get update -q || { echo "apt-get update failed: check the host's apt sources and proxy"; return 1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing \
            || { echo "could not install$missing from the distribution (apt-get install$missing)"; return 1; }
    else
        echo "present: $pkgs"
    fi
}

binfmt() {
    [ "$HOST_ARCH" = aarch64 ] && { echo "native aarch64 host: no emulation"; return 0; }
    local dir=/proc/sys/fs/binfmt_misc
    if [ ! -e "$dir/register" ]; then
        mount -t binfmt_misc binfmt_misc "$dir" || {
            echo "binfmt_misc is not mounted and cannot be mounted here (a container without privileges?):"
            echo "  on the host: sudo mount -t binfmt_misc binfmt_misc $dir && sudo update-binfmts --enable qemu-aarch64"
            echo "  or run this container with --privileged"; return 1; }
    fi
    [ -e "$dir/qemu-aarch64" ] || update-binfmts --enable qemu-aarch64 || true
    if ! grep -q '^enabled' "$dir/qemu-aarch64" 2>/dev/null; then
        echo "no enabled binfmt_misc entry for aarch64 ($dir/qemu-aarch64): install qemu-user-static and"
        echo "binfmt-support, then sudo update-binfmts --enable qemu-aarch64 (in a container: on the host)"
        return 1
    fi
    grep -q '^flags:.*F' "$dir/qemu-aarch64" \
        || { echo "the aarch64 binfmt entry lacks the F (fix binary) flag: copy qemu-aarch64-static into the root"; \
             return 1; }
    sed -n '1,3p' "$dir/qemu-aarch64"
}

# --- the cached root ----------------------------------------------------------------------------------------------
build_root() {
    if [ -f "$STAMP" ] && [ "$REBUILD" -eq 0 ]; then
        echo "cached: $ROOT ($(cat "$STAMP"))"
        return 0
    fi
    rm -rf "$ROOT" "$STAMP" "$ROOTDIR/root.partial"
    local args=(--arch=arm64 --variant=minbase "--include=$ROOT_PKGS")
    [ -n "$KEYRING" ] && args+=("--keyring=$KEYRING" --components=main,universe)
    echo "debootstrap ${args[*]} $SUITE $ROOTDIR/root.partial $MIRROR"
    debootstrap "${args[@]}" "$SUITE" "$ROOTDIR/root.partial" "$MIRROR" || {
        echo "debootstrap failed (see above; its log is $ROOTDIR/root.partial/debootstrap/debootstrap.log)"; return 1; }
    local arch py
    arch=$(chroot "$ROOTDIR/root.partial" uname -m) || return 1
    py=$(chroot "$ROOTDIR/root.partial" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') || return 1
    [ "$arch" = aarch64 ] || { echo "the root says uname -m = $arch, not aarch64"; return 1; }
    [ "$py" = "$PYVER" ] || { echo "the root has Python $py, expected $PYVER"; return 1; }
    chroot "$ROOTDIR/root.partial" apt-get clean || true
    mv "$ROOTDIR/root.partial" "$ROOT" || return 1
    echo "$SUITE arm64 minbase, Python $py, built $(date -u +%FT%TZ) from $MIRROR" > "$STAMP"
    cat "$STAMP"
}

# --- a throw-away overlay on the cached root, with the host's CA and pip/apt settings -------------------------------
prepare_run() {
    mkdir -p "$RUN/upper" "$RUN/work" "$MNT" "$CACHE/pip-cache/$TARGET"
    if mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$RUN/upper,workdir=$RUN/work" "$MNT" 2>/dev/null; then
        MOUNTS+=("$MNT"); echo "overlay on $ROOT"
    else
        echo "overlayfs unavailable: copying the root"; rmdir "$MNT"; cp -a "$ROOT" "$MNT" || return 1
    fi
    mount -t proc proc "$MNT/proc" && MOUNTS+=("$MNT/proc") || return 1
    # not the host's /sys: XNNPACK's cpuinfo reads the CPU topology there and, finding an x86 host's, crashes; a
    # 4-core board's topology instead (what a Pi or a Jetson Orin Nano reports)
    mount -t tmpfs -o size=1m sysfs-board "$MNT/sys" && MOUNTS+=("$MNT/sys") || return 1
    mkdir -p "$MNT/sys/devices/system/cpu" "$MNT/sys/fs/cgroup"
    echo 0-3 > "$MNT/sys/devices/system/cpu/possible"
    echo 0-3 > "$MNT/sys/devices/system/cpu/present"
    echo 0-3 > "$MNT/sys/devices/system/cpu/online"
    mount --rbind /dev "$MNT/dev" && mount --make-rslave "$MNT/dev" && MOUNTS+=("$MNT/dev") || return 1
    mkdir -p "$MNT/root/.cache/pip"
    mount --bind "$CACHE/pip-cache/$TARGET" "$MNT/root/.cache/pip" && MOUNTS+=("$MNT/root/.cache/pip") || return 1
    # network settings and the host's CA (pip inside fails with CERTIFICATE_VERIFY_FAILED without it)
    cp -L /etc/resolv.conf "$MNT/etc/resolv.conf" 2>/dev/null || true
    local ca
    for ca in "${SSL_CERT_FILE:-}" "${PIP_CERT:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
        [ -n "$ca" ] && [ -s "$ca" ] && break
    done
    [ -s "$ca" ] || { echo "no CA bundle on the host (looked at SSL_CERT_FILE, PIP_CERT, /etc/ssl/certs)"; return 1; }
    mkdir -p "$MNT/etc/biolock-arm64"
    cp -L "$ca" "$MNT/etc/biolock-arm64/host-ca.pem"
    python3 "$HELPER" pipconf --ca /etc/biolock-arm64/host-ca.pem > "$MNT/etc/pip.conf" || return 1
    python3 "$HELPER" env > "$RUN/passenv" || return 1
    apt-config dump 2>/dev/null | grep -E '^Acquire::(https?|ftp)::Proxy' > "$MNT/etc/apt/apt.conf.d/90host-proxy" || true
    echo "CA: $ca -> /etc/biolock-arm64/host-ca.pem"; echo "pip.conf:"; cat "$MNT/etc/pip.conf"
    echo "passed variables: $(cut -d= -f1 "$RUN/passenv" | tr '\n' ' ')"
    echo "system: $(in_root uname -m) $(in_root python3 --version)"
}

# in_root CMD...: runs CMD in the root with a clean environment (plus the host's proxy / pip variables).
in_root() {
    local envs=() line
    while IFS= read -r line; do envs+=("$line"); done < "$RUN/passenv"
    chroot "$MNT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=dumb QEMU_CPU="$QEMU_CPU" \
        PATH=/opt/biolock/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        SSL_CERT_FILE=/etc/biolock-arm64/host-ca.pem REQUESTS_CA_BUNDLE=/etc/biolock-arm64/host-ca.pem \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off "${envs[@]}" "$@"
}

# --- biolock: the committed tree, as a wheel, and its extras from wheels only ---------------------------------------
snapshot() {
    mkdir -p "$MNT/opt/biolock-src" "$MNT/opt/biolock-check"
    git -C "$REPO" archive --format=tar HEAD | tar -x -C "$MNT/opt/biolock-src" || return 1
    echo "HEAD $(git -C "$REPO" rev-parse --short HEAD): $(git -C "$REPO" log -1 --format=%s | cut -c1-90)"
    if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        echo "note: the working tree has uncommitted changes; the check installs HEAD only"
    fi
}

# The venv with every dependency is cached per target and per pyproject.toml (+ extras, test tools): under qemu the
# install takes ~10 minutes. A cached venv was itself installed with --only-binary=:all: (its pip report is kept);
# biolock's own wheel is installed fresh on every run. Any change to pyproject.toml rebuilds it.
TEST_TOOLS="pytest>=8 pytest-timeout>=2.3 hypothesis>=6.100 cobs>=1.2"
venv_key() {
    { git -C "$REPO" show HEAD:pyproject.toml; echo "$EXTRAS $TEST_TOOLS $PYVER"; } | sha256sum | cut -c1-16
}

install_wheels() {
    # biolock is pure Python: its wheel is built from the snapshot (setuptools from the index, a wheel itself)
    in_root python3 -m venv /opt/biolock-check/build-venv || return 1
    in_root /opt/biolock-check/build-venv/bin/pip install -q --only-binary=:all: 'setuptools>=77' wheel || return 1
    in_root /opt/biolock-check/build-venv/bin/pip wheel -q --no-deps --no-build-isolation \
        -w /opt/biolock-check/dist /opt/biolock-src || return 1
    local whl
    whl=$(cd "$MNT/opt/biolock-check/dist" && ls biolock-*.whl | head -n 1)
    [ -n "$whl" ] || { echo "no biolock wheel was built"; return 1; }
    echo "built $whl"
    local key cached
    key=$(venv_key)
    cached="$ROOTDIR/venv-$key"
    if [ -f "$cached.ok" ] && [ "$REBUILD" -eq 0 ]; then
        echo "cached venv $cached ($(cat "$cached.ok")); installing only $whl"
        mkdir -p "$MNT/opt/biolock" && cp -a "$cached" "$MNT/opt/biolock/.venv" || return 1
        cp "$cached.report.json" "$RUN/pip-report.json" || return 1
        in_root /opt/biolock/.venv/bin/pip install --no-deps --force-reinstall --no-compile \
            "/opt/biolock-check/dist/$whl" || return 1
        python3 "$HELPER" wheels "$RUN/pip-report.json"
        return 0
    fi
    in_root python3 -m venv /opt/biolock/.venv || return 1
    # --only-binary=:all: makes a dependency without an aarch64 wheel for this Python fail here, loudly
    in_root /opt/biolock/.venv/bin/pip install --only-binary=:all: --report /opt/biolock-check/pip-report.json \
        "/opt/biolock-check/dist/$whl[$EXTRAS]" $TEST_TOOLS > "$RUN/pip.log" 2>&1
    local rc=$?
    cat "$RUN/pip.log"
    cp "$MNT/opt/biolock-check/pip-report.json" "$RUN/pip-report.json" 2>/dev/null || true
    if [ $rc -ne 0 ]; then
        local req
        if req=$(python3 "$HELPER" missing "$RUN/pip.log"); then :; else
            echo "MISSING WHEEL: no aarch64 wheel of $req for Python $PYVER ($SUITE). Get one: ask the project for a"
            echo "  manylinux aarch64 wheel, pin a release that has one (deploy/arm64/wheel_table.py shows which),"
            echo "  or drop the dependency from the device path. Nothing from this run is reported as passing."
        fi
        rm -f "$RUN/pip-report.json"
        return 1
    fi
    python3 "$HELPER" wheels "$RUN/pip-report.json" || return 1
    rm -rf "$cached" "$cached.partial" "$ROOTDIR"/venv-*  # one venv per target: the newest pyproject's
    cp -a "$MNT/opt/biolock/.venv" "$cached.partial" && mv "$cached.partial" "$cached" \
        && cp "$RUN/pip-report.json" "$cached.report.json" \
        && echo "built $(date -u +%FT%TZ) from git $(git -C "$REPO" rev-parse --short HEAD)" > "$cached.ok"
}

# deploy/install.sh for real, inside the root: udevadm and systemctl need a running init, so they are logged instead.
install_sh() {
    mkdir -p "$MNT/opt/biolock-check/shims"
    local tool
    for tool in udevadm systemctl; do
        printf '#!/bin/sh\necho "[no init in a chroot] %s $*" >> /opt/biolock-check/shim-calls.log\n' "$tool" \
            > "$MNT/opt/biolock-check/shims/$tool"
        chmod +x "$MNT/opt/biolock-check/shims/$tool"
    done
    in_root env PATH=/opt/biolock-check/shims:/usr/sbin:/usr/bin:/sbin:/bin sh /opt/biolock-src/deploy/install.sh \
        || return 1
    echo "--- logged instead of run:"; cat "$MNT/opt/biolock-check/shim-calls.log" 2>/dev/null
}

system_checks() {
    local ok=0
    in_root id biolock || { echo "FAIL: no user biolock"; ok=1; }
    [ -d "$MNT/etc/biolock" ] && [ -f "$MNT/etc/biolock/biolock.toml" ] || { echo "FAIL: no /etc/biolock/biolock.toml"; ok=1; }
    in_root /opt/biolock/.venv/bin/biolock --config /etc/biolock/biolock.toml status >/dev/null 2>&1 || true
    # the unit: systemd's own parser (ExecStart must exist: it is the venv install.sh made)
    if in_root sh -c 'command -v systemd-analyze' >/dev/null; then
        in_root systemd-analyze verify /etc/systemd/system/biolock.service \
            && echo "systemd-analyze verify biolock.service: clean" || { echo "FAIL: systemd-analyze verify"; ok=1; }
    else
        echo "FAIL: systemd-analyze missing in the root"; ok=1
    fi
    # StateDirectory=biolock with User=biolock: what systemd would create at start, made here the same way
    in_root install -d -o biolock -g biolock -m 0700 /var/lib/biolock && \
        in_root runuser -u biolock -- /opt/biolock/.venv/bin/biolock --state-dir /var/lib/biolock \
            --config /etc/biolock/biolock.toml status \
        && echo "biolock status as user biolock with its state directory: ok" \
        || { echo "FAIL: biolock status as user biolock"; ok=1; }
    # udev rules: udevadm verify where systemd has it (>= 254), and our own syntax check everywhere
    if in_root udevadm verify --help >/dev/null 2>&1; then
        in_root udevadm verify /etc/udev/rules.d/99-biolock.rules || { echo "FAIL: udevadm verify"; ok=1; }
    fi
    python3 "$HERE/udev_lint.py" "$MNT/etc/udev/rules.d/99-biolock.rules" || { echo "FAIL: udev rule syntax"; ok=1; }
    return $ok
}

# Same numbers as x86: the shipped models' raw outputs for fixed inputs, on the host and in the root (parity.py).
parity() {
    local py=${BIOLOCK_HOST_PYTHON:-$REPO/.venv/bin/python}
    "$py" -c 'import ai_edge_litert' >/dev/null 2>&1 || py=python3
    if ! "$py" -c 'import ai_edge_litert, numpy' >/dev/null 2>&1; then
        echo "no host Python with ai-edge-litert ($py; make venv): nothing to compare against"; return 1
    fi
    "$py" "$HERE/parity.py" "$MNT/opt/biolock-src/models" > "$RUN/parity-host.json" || return 1
    cp "$HERE/parity.py" "$MNT/opt/biolock-check/parity.py"
    in_root python /opt/biolock-check/parity.py /opt/biolock-src/models > "$RUN/parity-board.json" || return 1
    python3 "$HERE/parity.py" --compare "$RUN/parity-host.json" "$RUN/parity-board.json"
}

# The tests' fixture models are built with TensorFlow, which the board never has: build them on the host (the
# developer's .venv, `make venv`) from the snapshot's own tests/models_fixture.py, and hand them to the root through
# BIOLOCK_TEST_MODEL_CACHE. The .tflite/.onnx files are the same on every architecture; inference runs on aarch64.
fixture_models() {
    local py=${BIOLOCK_HOST_PYTHON:-$REPO/.venv/bin/python}
    if ! "$py" -c 'import tensorflow' >/dev/null 2>&1; then
        echo "no host Python with TensorFlow ($py; make venv, or set BIOLOCK_HOST_PYTHON):"
        echo "the tests that need the fixture models will be skipped, and counted as skipped"
        return 0
    fi
    mkdir -p "$CACHE/fixture-models"
    (cd "$MNT/opt/biolock-src" && BIOLOCK_TEST_MODEL_CACHE="$CACHE/fixture-models" "$py" -c '
import hashlib, os, shutil, sys
from pathlib import Path
sys.path[:0] = ["tests", "."]
import models_fixture as mf
src = hashlib.sha256(Path("tests/models_fixture.py").read_bytes()).hexdigest()[:12]
out = Path(os.environ["BIOLOCK_TEST_MODEL_CACHE"]) / f"fixture-{mf.FIXTURE_VERSION}-{src}"
if not (out / "vein.json").is_file():
    tmp = out.with_name(f".building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    mf.build_fixture_models(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
print(out, sorted(p.name for p in out.iterdir()))
') || return 1
    mkdir -p "$MNT/opt/biolock-check/fixture-models"
    cp -a "$CACHE/fixture-models/." "$MNT/opt/biolock-check/fixture-models/"
}

run_tests() {
    local files
    if [ "$TESTS" = auto ]; then
        files=$(python3 "$HELPER" select-tests "$MNT/opt/biolock-src" 2> "$RUN/log/left-out.txt") || return 1
        cat "$RUN/log/left-out.txt"
    else
        files=$TESTS
    fi
    echo "$files" > "$RUN/test-files.txt"
    # -m "not slow": the slow tests (training, soak) are for the host; --timeout per test guards a hang under qemu
    in_root sh -c "cd /opt/biolock-src && GPIOZERO_PIN_FACTORY=mock \
        BIOLOCK_TEST_MODEL_CACHE=/opt/biolock-check/fixture-models python -m pytest -q -p no:cacheprovider \
        -m 'not slow' --timeout=900 --junitxml=/opt/biolock-check/junit.xml $(echo $files)"
    local rc=$?
    cp "$MNT/opt/biolock-check/junit.xml" "$RUN/junit.xml" 2>/dev/null
    return $rc
}

# Everything runs from main, called on the script's last line: bash has then read the whole file, so editing
# check.sh while a check runs cannot change the running one.
main() {
{
    echo "target: $TARGET = $BOARD, Python $PYVER, arm64 under $( [ "$HOST_ARCH" = x86_64 ] \
        && echo "qemu-user-static (CPU $QEMU_CPU)" || echo native)"
    echo "host: $(. /etc/os-release && echo "$PRETTY_NAME") $HOST_ARCH, $(nproc) cores; root cache $ROOTDIR"
    echo "biolock: git $(git -C "$REPO" rev-parse --short HEAD), extras $EXTRAS"
} > "$RUN/meta.txt"
cat "$RUN/meta.txt"

step host-packages "qemu-user-static binfmt-support debootstrap" host_packages || finish
step binfmt "aarch64 registered" binfmt || finish
step root "$SUITE arm64" build_root || finish
step prepare "overlay, CA, pip.conf" prepare_run || finish
step snapshot "git archive HEAD" snapshot || finish
step wheels "--only-binary=:all: [$EXTRAS]" install_wheels || finish
step help "biolock --help" in_root biolock --help
step status "biolock status" in_root biolock status
step demo "biolock demo" in_root biolock demo
# the embedding path end to end even where the default decision cannot start (e.g. NBIS absent on this glibc): the
# shipped model card alone, without the fusion card beside it (the demo builds its own configuration); a separate
# step, so a failing default demo above still fails the check
mkdir -p "$MNT/opt/biolock-check/embedding-only"
cp "$MNT"/opt/biolock-src/models/fingerprint{.json,_int8.tflite,.onnx} "$MNT/opt/biolock-check/embedding-only/"
step demo-embedding "biolock demo, embedding alone" \
    in_root biolock demo --model /opt/biolock-check/embedding-only/fingerprint.json
# fewer repeats than on a board: under emulation the times only show that every stage runs (docs/boards.md)
step bench "biolock bench (20 runs/stage)" in_root biolock bench --repeat 20 --sizes 100,1000,10000 --no-startup
step parity "model outputs = x86's" parity
if [ "$TESTS" != none ]; then
    step fixture-models "built on the host" fixture_models
    step tests "device-side tests" run_tests
fi
# last: install.sh changes the root (user, /etc/biolock, venv), which the tests must not see
step install.sh "deploy/install.sh in the root" install_sh
step system "user, unit, state dir, udev" system_checks
for name in status demo demo-embedding bench parity; do
    [ -f "$RUN/log/$name.log" ] && { echo; echo "--- biolock $name (aarch64):"; tail -n 30 "$RUN/log/$name.log"; }
done
finish
}

main "$@"; exit $?
