#!/usr/bin/env bash
# The packages benchmarks/gpu.py needs on a remote GPU machine that its image lacks, for Python 3.12 on x86-64
# (the image has torch 2.11+cu130, onnx, onnxscript, opencv headless, click, tqdm, matplotlib and a CPU-only
# onnxruntime; no network). docs/gpu.md gives the two device calls that use them.
#
#   scripts/gpu-wheels.sh            here: download into .whl/ (git-ignored), prepare, print the sizes
#   scripts/gpu-wheels.sh install    there: install into /tmp/site (then: export PYTHONPATH=/tmp/site:$PWD/src)
#
# onnxsim travels as its wheel. onnxruntime-gpu's wheel is 256 MB, four times what a call carries (64 MiB with
# the working tree), so it is unpacked, its CUDA provider pruned to the sm_90 kernels that an H100 or H200 runs
# (scripts/prune_fatbin.py), packed with xz and split in two parts: .whl/call1 (part 1) travels in a first call
# and waits in /tmp/whl while the machine stays warm; .whl/call2 (part 2, its checksum, onnxsim) with the run.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_VERSION=1.31.1  # built for CUDA 13, as the image's torch 2.11+cu130
ONNXSIM_VERSION=0.8.1
PART_MIB=${PART_MIB:-46}  # part 1; the working tree (about 13 MiB) travels beside it
ARCHIVE=onnxruntime-gpu-$ORT_VERSION-sm90.tar.xz

install() {  # on the device machine, from the repository root
    mkdir -p /tmp/site
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/call2/*.whl
    if [ ! -f /tmp/whl/$ARCHIVE.part1 ]; then
        echo "onnxruntime-gpu not installed: /tmp/whl/$ARCHIVE.part1 is missing (the first call did not run on this" \
             "machine, or it went back in between); the CUDA provider rows will say so"
        return 0
    fi
    python3 - "$ARCHIVE" <<'EOF'
import hashlib, io, lzma, sys, tarfile
archive = sys.argv[1]
data = open(f"/tmp/whl/{archive}.part1", "rb").read() + open(f".whl/call2/{archive}.part2", "rb").read()
want = open(".whl/call2/SHA256").read().split()[0]
if hashlib.sha256(data).hexdigest() != want:
    sys.exit(f"onnxruntime-gpu not installed: the two parts of {archive} do not make the archive prepared here")
with tarfile.open(fileobj=io.BytesIO(lzma.decompress(data))) as tar:
    tar.extractall("/tmp/site", filter="data")
print(f"onnxruntime-gpu installed into /tmp/site ({len(data) / 2**20:.1f} MiB archive)")
EOF
}

download() {
    local python=${PYTHON:-.venv/bin/python}
    rm -rf .whl && mkdir -p .whl/download .whl/call1 .whl/call2
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl/download \
        "onnxruntime-gpu==$ORT_VERSION" "onnxsim==$ONNXSIM_VERSION"
    mv .whl/download/onnxsim-*.whl .whl/call2/
    work=$(mktemp -d)
    trap 'rm -rf "${work:-}"' EXIT
    "$python" -m zipfile -e .whl/download/onnxruntime_gpu-*.whl "$work"
    "$python" scripts/prune_fatbin.py "$work/onnxruntime/capi/libonnxruntime_providers_cuda.so" --keep 90
    tar -C "$work" -cf - onnxruntime "onnxruntime_gpu-$ORT_VERSION.dist-info" | xz -6 -T1 > ".whl/$ARCHIVE"
    sha256sum ".whl/$ARCHIVE" > .whl/call2/SHA256
    split -b "${PART_MIB}M" --numeric-suffixes=1 -a 1 ".whl/$ARCHIVE" ".whl/$ARCHIVE.part"
    if [ -f ".whl/$ARCHIVE.part3" ]; then
        echo "error: the archive needs more than two parts of $PART_MIB MiB" >&2
        exit 1
    fi
    mv ".whl/$ARCHIVE.part1" .whl/call1/
    mv ".whl/$ARCHIVE.part2" .whl/call2/ 2>/dev/null || : > ".whl/call2/$ARCHIVE.part2"  # all of it fit in part 1
    rm -rf .whl/download ".whl/$ARCHIVE"
    du -b .whl/call1/* .whl/call2/* | awk '{printf "%8.1f MiB  %s\n", $1 / 1048576, $2}'
    du -sb .whl/call1 .whl/call2 | awk '{printf "%8.1f MiB  %s (carried by one call, beside the working tree)\n", $1 / 1048576, $2}'
    echo "see docs/gpu.md for the two device calls"
}

case "${1:-download}" in
    download) download ;;
    install) install ;;
    *) echo "error: usage: scripts/gpu-wheels.sh [download|install]" >&2; exit 2 ;;
esac
