# Two commands on a fresh machine: `make demo` (the main job end to end) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUNS   ?= runs
CLI    := $(BIN)/digitsum-edge

.PHONY: install demo train export bench live test test-quick test-slow lint docs results bench-train bench-seeds bench-serve web \
	bench-real default-model mcu serve-abuse serve-page-abuse cluster arm64 clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The main job: train -> export (fp32 + int8) -> bench -> a headless live run on a generated video.
demo: train export bench live

train: install
	$(CLI) train --out $(RUNS) --force

export: install
	$(CLI) export $(RUNS)/model.pt --int8 --force --json $(RUNS)/export.json

bench: install
	$(CLI) bench --checkpoint $(RUNS)/model.pt --json $(RUNS)/bench.json --plot $(RUNS)/bench.png

live: install
	$(CLI) synth $(RUNS)/sample.mp4 --force
	$(CLI) live --source $(RUNS)/sample.mp4 --model $(RUNS)/model.onnx --rand 7 --no-window \
		--jsonl $(RUNS)/live.jsonl --save-video $(RUNS)/live_annotated.mp4 --force

# The test command (what CI runs): Xvfb for the window test (apt-get as root; a printed skip elsewhere),
# lint, type check, the docs site (strict), then the fast test suite (it also builds the wheel and installs it without extras) on two
# pytest-xdist workers, each file on one worker (its own server, venv or export is made once), the longest files
# first (tests/conftest.py orders them; --no-loadscope-reorder keeps that order).
test: install lint docs
	@scripts/install-test-deps.sh
	$(BIN)/pytest -q -m "not slow" -n 2 --dist loadfile --no-loadscope-reorder --durations=20

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

# The documentation site (docs/ -> site/): MkDocs with the Material theme; --strict fails on a broken link or
# reference. The results page must be what scripts/results_page.py makes of docs/*.json (`make results` rewrites it).
docs: install
	$(BIN)/python scripts/results_page.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

results: install
	$(BIN)/python scripts/results_page.py

# A quick subset while developing: no server, browser, window or wheel-install tests (CI runs them all).
test-quick: install
	$(BIN)/pytest -q -m "not slow and not serve and not browser and not display and not install" -n 2 --dist loadfile \
		--no-loadscope-reorder --durations=10

test-slow: install
	$(BIN)/pytest -q -m slow

# Time-to-accuracy of the default recipe against the reference notebook recipe (about 10 minutes).
bench-train: install
	$(BIN)/python benchmarks/train_vs_reference.py --json $(RUNS)/train_vs_reference.json

# Accuracy of the default recipe over 5 seeds: table, mean/std/min/max, worst seed (about 5 minutes).
bench-seeds: install
	$(BIN)/python benchmarks/seeds.py --seeds 5 --json $(RUNS)/seeds.json

# `digitsum-edge serve` under load: 1 and 2 replicas beside the in-process ceiling (about three minutes).
bench-serve: install
	$(BIN)/python benchmarks/serve_load.py --model $(RUNS)/model.onnx --json $(RUNS)/serve_load.json

# `digitsum-edge serve` against hostile clients: slow uploads, costly images, floods, signals (about 4 minutes).
serve-abuse: install
	$(BIN)/python benchmarks/serve_abuse.py --model $(RUNS)/model.onnx --json $(RUNS)/serve_abuse.json

# The page's clients beside the API (slow and flooding), over HAProxy, HTTPS through HAProxy and Ray's proxy.
serve-page-abuse: install
	$(BIN)/python benchmarks/serve_abuse.py --cases page --model $(RUNS)/model.onnx --json $(RUNS)/serve_page_abuse.json

# `serve --address auto` on a two-node Ray cluster on this machine, a node lost under load (about 5 minutes).
cluster: install
	$(BIN)/python benchmarks/cluster.py --model $(RUNS)/model.onnx --json $(RUNS)/serve_cluster.json

# Real photos of handwritten digits (../shared/data/real-photos, kept outside the project): accuracy per writer.
bench-real: install
	$(BIN)/python benchmarks/real_photos.py --model $(RUNS)/model.onnx --json $(RUNS)/real_photos.json

# The in-browser app: the locked npm package (onnxruntime-web) with npm ci, then a static folder that
# reads digits on the device, offline once loaded (runs/web: put it on any static host, https or localhost).
web: install
	@command -v npm >/dev/null 2>&1 || { echo "error: make web needs npm (apt-get install npm)"; exit 1; }
	cd src/digitsum_edge/web && npm ci --ignore-scripts --no-audit --no-fund
	$(CLI) web $(RUNS)/web --model $(RUNS)/model.onnx --force

# The model built into the package (src/digitsum_edge/models/): the default recipe's seed-0 model, trained and
# exported, then verified again on every test pair and given its card (default.json). SEED_RUN: that run's folder.
SEED_RUN ?= $(RUNS)/seed0
default-model: install
	$(CLI) train --seed 0 --threads 1 --out $(SEED_RUN) --force
	$(CLI) export $(SEED_RUN)/model.pt --force
	$(BIN)/python scripts/default_model.py $(SEED_RUN)

# The int8 model as C on emulated microcontrollers (docs/mcu.md; Debian packages gcc-arm-none-eabi and
# qemu-system-arm): export --format c, checked against TFLite Micro on all 100,000 test pairs, then built for
# Cortex-M4, M7 and M55 and run on the 10,000 test images under QEMU; table on stdout, figures in JSON.
mcu: install $(RUNS)/model.int8.tflite
	$(BIN)/python benchmarks/mcu.py --tflite $(RUNS)/model.int8.tflite --checkpoint $(RUNS)/model.pt \
		--json $(RUNS)/mcu.json

$(RUNS)/model.int8.tflite:
	$(CLI) export $(RUNS)/model.pt --format litert-int8 --force

# The runtime on ARM64 (Raspberry Pi OS bookworm, Python 3.11) under QEMU emulation, Pi 4 and Pi 5 cores, against
# x86 on the same inputs (docs/arm64.md): needs mmdebstrap and qemu-user-static; the userland and aarch64 wheels are
# cached in ~/.cache/digitsum-edge/arm64. All 100,000 pairs per model file take hours emulated (ARM64_PAIRS=1000).
ARM64_PAIRS ?= 100000
arm64: install
	$(BIN)/python benchmarks/arm64.py --model $(RUNS)/model.onnx --litert $(RUNS)/model.tflite \
		--pairs $(ARM64_PAIRS) --json $(RUNS)/arm64.json

clean:
	rm -rf $(RUNS) .pytest_cache .ruff_cache site
