#!/bin/sh
# Install biolock as a service on Raspberry Pi OS (Bookworm) or Jetson Linux (Ubuntu), from this checkout.
#
#   sudo deploy/install.sh                 # install, do not start
#   sudo deploy/install.sh --start         # install, enable and start the service
#   deploy/install.sh --dry-run            # print what would be done (no root needed)
#   sudo deploy/install.sh --extras=device,pi   # choose the extras instead of detecting the board
#   sudo deploy/install.sh --unlock=serial # how the door opens: serial (lock controller on /dev/biolock-lock),
#                                          # gpiozero or gpiod (relay on GPIO 17), or none (opens nothing)
#
# What it does: creates the system user `biolock` (groups dialout, video, gpio), a virtual environment in
# /opt/biolock/.venv with the `device` extra (plus `pi` on a Raspberry Pi, `jetson` on Jetson),
# /etc/biolock/biolock.toml with the board's UART and the --unlock choice if there is none yet, the state
# directory /var/lib/biolock (0700; also the service's working directory), the udev rules and the systemd unit.
# See docs/daemon.md and docs/boards.md.
set -eu

PREFIX=/opt/biolock
CONF_DIR=/etc/biolock
SRC=$(cd "$(dirname "$0")/.." && pwd)
STATE_DIR=/var/lib/biolock
DRY=0
START=0
EXTRAS_OPT=
UNLOCK=
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY=1 ;;
        --start) START=1 ;;
        --extras=*) EXTRAS_OPT=${arg#--extras=} ;;
        --unlock=serial|--unlock=gpiozero|--unlock=gpiod|--unlock=none) UNLOCK=${arg#--unlock=} ;;
        --unlock*) echo "use --unlock=serial, --unlock=gpiozero, --unlock=gpiod or --unlock=none" >&2; exit 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown option: $arg" >&2; exit 2 ;;
    esac
done

run() {
    echo "+ $*"
    if [ "$DRY" -eq 0 ]; then "$@"; fi
}

# The [unlock] section for --unlock; without a choice every option is left commented out and `biolock run`
# refuses to start until one is made (it never pretends to open a door it has no way to open).
unlock_section() {
    echo "[unlock]"
    echo "duration_ms = 3000"
    case "$UNLOCK" in
        none) echo "none = true                 # chosen at install: accepts open nothing (logged unlocked=False)" ;;
        serial) printf '%s\n' "" "[unlock.serial]              # pair first: biolock lock pair --port /dev/biolock-lock" \
                    "enabled = true" 'port = "/dev/biolock-lock"' ;;
        gpiozero|gpiod) printf '%s\n' "" "[unlock.gpio]" "backend = \"$UNLOCK\"" "relay_pin = 17" ;;
        *) printf '%s\n' "# choose one (biolock run refuses to start until you do; docs/lock-bridge.md):" \
                "# none = true" "# [unlock.serial]" "# enabled = true" '# port = "/dev/biolock-lock"' \
                "# [unlock.gpio]" '# backend = "gpiozero"' "# relay_pin = 17" ;;
    esac
}

if [ "$DRY" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "run as root (sudo $0), or with --dry-run to see the steps" >&2
    exit 1
fi

# --- which board, which UART ------------------------------------------------------------------------------------
MODEL=$(tr -d '\0' 2>/dev/null < /proc/device-tree/model || true)
EXTRAS=device
case "$MODEL" in
    *"Raspberry Pi 5"*) BOARD="Raspberry Pi 5"; UART=/dev/ttyAMA0; EXTRAS=device,pi ;;  # GPIO14/15, dtparam=uart0=on
    *"Raspberry Pi"*)   BOARD="$MODEL"; UART=/dev/ttyS0; EXTRAS=device,pi ;;  # mini UART on GPIO14/15
    *)
        if [ -f /etc/nv_tegra_release ] || echo "$MODEL" | grep -qi jetson; then
            BOARD="Jetson ($MODEL)"; UART=/dev/ttyTHS1; EXTRAS=device,jetson
        else
            BOARD="unknown board"; UART=/dev/ttyUSB0
        fi ;;
esac
# pi: gpiozero's lgpio pin factory + libgpiod (docs/boards.md); jetson: onnxruntime + libgpiod (JetPack's
# onnxruntime-gpu / OpenCV replace PyPI's: README "Jetson")
if [ -n "$EXTRAS_OPT" ]; then EXTRAS=$EXTRAS_OPT; fi
echo "board: $BOARD; fingerprint module UART: $UART (edit $CONF_DIR/biolock.toml to change); extras: $EXTRAS"

# --- user, files, venv ----------------------------------------------------------------------------------------------
if ! id biolock >/dev/null 2>&1; then
    run useradd --system --home-dir /var/lib/biolock --no-create-home --shell /usr/sbin/nologin biolock
fi
for group in dialout video gpio; do
    # gpio is missing on some images (Jetson, plain Debian): create it so the udev rule and the user agree
    if ! getent group "$group" >/dev/null 2>&1; then run groupadd --system "$group"; fi
    run usermod -a -G "$group" biolock
done
# the state directory exists before the first start, so enrolling first (as printed at the end) works
run install -d -m 0700 -o biolock -g biolock "$STATE_DIR"
run mkdir -p "$PREFIX" "$CONF_DIR"
run python3 -m venv "$PREFIX/.venv"
run "$PREFIX/.venv/bin/pip" install --quiet --upgrade pip
run "$PREFIX/.venv/bin/pip" install --quiet "$SRC[$EXTRAS]"
# The minutiae matcher (docs/minutiae.md) where NBIS installs (nbis-py on x86_64, nbis-python on aarch64, whose
# wheels need glibc >= 2.38: docs/boards.md); without it the embedding decides (biolock status says which).
run "$PREFIX/.venv/bin/pip" install --quiet "$SRC[minutiae]" || echo "NBIS not available here: minutiae off"
if [ ! -e "$CONF_DIR/biolock.toml" ]; then
    echo "+ write $CONF_DIR/biolock.toml"
    if [ "$DRY" -eq 0 ]; then
        cat > "$CONF_DIR/biolock.toml" <<TOML
# biolock configuration: every key is optional (see docs/daemon.md and docs/sensors.md)
[device]
modality = "fingerprint"

[sensor]
type = "r30x"
port = "$UART"
module = "r307"
baud = 57600

[matching]
security = "secure"

$(unlock_section)
TOML
        chmod 0644 "$CONF_DIR/biolock.toml"
    fi
fi

# --- udev and systemd ---------------------------------------------------------------------------------------------------
run install -m 0644 "$SRC/deploy/99-biolock.rules" /etc/udev/rules.d/99-biolock.rules
run udevadm control --reload
run udevadm trigger
run install -m 0644 "$SRC/deploy/biolock.service" /etc/systemd/system/biolock.service
if command -v systemd-analyze >/dev/null 2>&1; then run systemd-analyze verify /etc/systemd/system/biolock.service; fi
run systemctl daemon-reload
if [ -z "$UNLOCK" ] && ! grep -Eq '^[[:space:]]*(none|enabled)[[:space:]]*=[[:space:]]*true|^[[:space:]]*backend[[:space:]]*=[[:space:]]*"gpio' \
        "$CONF_DIR/biolock.toml" 2>/dev/null; then
    echo "note: no lock chosen in $CONF_DIR/biolock.toml ([unlock]); biolock run refuses to start until one is"
    echo "      (rerun with --unlock=serial|gpiozero|gpiod|none on a fresh config, or edit the file)"
fi
if [ "$START" -eq 1 ]; then
    run systemctl enable --now biolock.service
else
    echo "next: enrol people (sudo -u biolock $PREFIX/.venv/bin/biolock --config $CONF_DIR/biolock.toml \\"
    echo "      --state-dir $STATE_DIR enroll NAME --finger right-index), then: sudo systemctl enable --now biolock"
    echo "      (enrolling again later works while the service runs: it lends the sensor to the command)"
fi
