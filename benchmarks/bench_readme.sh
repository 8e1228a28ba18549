#!/usr/bin/env bash
# The bench run whose table and chart are in the README: the default checkpoint, its fp32 and int8 ONNX
# files, every default batch size, JSON and chart beside them, the table also kept as text.
#   RUNS=runs benchmarks/bench_readme.sh      (after `digitsum-edge train` and `digitsum-edge export --int8`)
set -euo pipefail
RUNS=${RUNS:-runs}
CLI=${CLI:-.venv/bin/digitsum-edge}
"$CLI" bench --checkpoint "$RUNS/model.pt" --json "$RUNS/bench.json" --plot "$RUNS/bench.png" \
    | tee "$RUNS/bench.txt"
