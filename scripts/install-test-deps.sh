#!/usr/bin/env bash
# What the test suite needs beyond the venv, from Debian's packages:
#   xvfb      the live window test runs a real window on a virtual X display (screenshot with Pillow)
#   chromium  the serve page test opens the webcam page in headless Chromium with a fake camera (the web app
#             tests too)
#   gcc-arm-none-eabi, qemu-system-arm  the MCU tests build the exported C model for Cortex-M cores and run it
#             under QEMU (tests/test_mcu.py)
#   qemu-user-static, mmdebstrap  the ARM64 test runs the runtime in a Debian bookworm arm64 userland under
#             emulation (built once into ~/.cache/digitsum-edge/arm64 by the test itself)
# Installed with apt-get when running as root; anywhere else it prints one `skip:` line per missing package
# and exits 0, and the test that needs it is skipped. It never fails the test command.
set -u

# The web app's npm package (onnxruntime-web) as package-lock.json pins it, for the web tests:
# `npm ci` when node_modules is older than the lockfile; without npm one `skip:` line and those tests skip.
web=src/digitsum_edge/web
if ! command -v npm >/dev/null 2>&1; then
    echo "skip: npm is not installed (apt-get install npm): the web app tests will be skipped"
elif [ ! "$web/node_modules/.package-lock.json" -nt "$web/package-lock.json" ]; then
    echo "npm ci in $web (onnxruntime-web, for the web app tests)"
    (cd "$web" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null 2>&1) \
        || echo "skip: npm ci failed in $web: the web app tests will be skipped"
fi

# package, the command it provides, the test that needs it
wanted=("xvfb Xvfb the live window test" "chromium chromium the serve page test"
        "gcc-arm-none-eabi arm-none-eabi-gcc the MCU tests" "qemu-system-arm qemu-system-arm the MCU tests"
        "qemu-user-static qemu-aarch64-static the ARM64 test" "mmdebstrap mmdebstrap the ARM64 test")
missing=()
for entry in "${wanted[@]}"; do
    read -r package command _ <<<"$entry"
    command -v "$command" >/dev/null 2>&1 || missing+=("$entry")
done
[ ${#missing[@]} -eq 0 ] && exit 0

why=""
if [ "$(id -u)" != 0 ]; then
    why="not root"
elif ! command -v apt-get >/dev/null 2>&1; then
    why="no apt-get"
else
    apt-get update -qq >/dev/null 2>&1 || true
    for entry in "${missing[@]}"; do  # one at a time: a package that fails does not take the other with it
        read -r package _ test <<<"$entry"
        echo "installing $package with apt-get (for $test)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null 2>&1
    done
fi
for entry in "${missing[@]}"; do
    read -r package command test <<<"$entry"
    if ! command -v "$command" >/dev/null 2>&1; then
        echo "skip: cannot install $package (${why:-apt-get install failed}): $test will be skipped"
    fi
done
exit 0
