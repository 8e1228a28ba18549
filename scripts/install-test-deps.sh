#!/usr/bin/env bash
# What the test suite needs beyond the venv: Xvfb, so that the live window test runs a real window on a
# virtual X display (the screenshot is taken with Pillow, already in the venv). Installed with apt-get
# when running as root; anywhere else it prints one `skip:` line and exits 0, and that test is skipped.
# It never fails the test command.
set -u

if command -v Xvfb >/dev/null 2>&1; then
    exit 0
fi

why=""
if [ "$(id -u)" != 0 ]; then
    why="not root"
elif ! command -v apt-get >/dev/null 2>&1; then
    why="no apt-get"
else
    echo "installing xvfb with apt-get (for the live window test)"
    if apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xvfb >/dev/null \
        && command -v Xvfb >/dev/null 2>&1; then
        exit 0
    fi
    why="apt-get install xvfb failed"
fi
echo "skip: cannot install xvfb ($why): the live window test will be skipped"
exit 0
