# hum2band: developer entry points (see README.md).
#
#   make setup   system packages (Debian/Ubuntu) + .venv with pinned Python packages
#   make demo    setup, then arrange examples/ode_to_joy.m4a for a band into out/demo/
#   make test    setup, then the test suite
#   make bench   setup, then the benchmarks in benchmarks/
#   make mutation  setup, then mutation testing of the modules that decide the music (long)
#
# Everything is installed into .venv (Python 3.11); nothing goes into the system Python.
# A stamp file (.venv/.hum2band-setup) makes a second `make setup` instant; it is redone when
# this Makefile, setup.cfg, pyproject.toml or constraints.txt change.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hum2band-setup
# Every pip call is constrained to the tested versions, so nothing (torch above all) can move.
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt
# Extra pip arguments for torch only, e.g. another index that serves a CPU-only wheel.
TORCH_PIP_ARGS ?=

# Debian/Ubuntu packages: FluidSynth with a General MIDI SoundFont (rendering), PortAudio
# (recording; libasound2-plugins lets it reach PulseAudio/PipeWire), mma (builds the accompaniment model's training corpus; the parts benchmark and
# its tests call it), PulseAudio (the recording test plays a take into a virtual microphone)
# Chromium (the web app's browser test) and Redis (the job queue of serve/arrange --queue and
# hum2band worker; its tests start their own redis-server). No ffmpeg: PyAV's wheel bundles its
# own FFmpeg.
SYSTEM_PACKAGES := libfluidsynth3 libportaudio2 libasound2-plugins fluid-soundfont-gm mma pulseaudio pulseaudio-utils chromium redis-server
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

DEMO_INPUT ?= examples/ode_to_joy.m4a
DEMO_OUT ?= out/demo
DEMO_STYLE ?= pop

# Sets $$py to the first Python 3.11 among $(PYTHON), python3.11 and python3 (empty if none).
FIND_PYTHON = py=""; \
	for c in $(PYTHON) python3.11 python3; do \
		if command -v "$$c" >/dev/null 2>&1 && "$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
			py="$$c"; break; \
		fi; \
	done

.PHONY: help setup system-packages demo test bench mutation clean distclean

help:
	@sed -n '3,7p' Makefile | sed 's/^# *//'

setup: $(STAMP)
	@:

$(STAMP): Makefile setup.cfg pyproject.toml constraints.txt
	@$(MAKE) --no-print-directory system-packages
	@$(FIND_PYTHON); \
	if [ -z "$$py" ]; then \
		echo "setup: error: no Python 3.11 found: install it (Debian/Ubuntu: python3.11 and python3.11-venv) or run 'make setup PYTHON=/path/to/python3.11'" >&2; \
		exit 1; \
	fi; \
	if [ ! -x "$(PY)" ]; then \
		echo "setup: creating $(VENV) with $$py"; \
		"$$py" -m venv "$(VENV)"; \
	elif ! "$(PY)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
		echo "setup: $(VENV) is not Python 3.11: recreating it with $$py"; \
		"$$py" -m venv --clear "$(VENV)"; \
	fi
	$(PIP_INSTALL) 'setuptools<81' wheel
# torch first and exactly 2.13.0 (the CPU build where one is available; see README.md).
	$(PIP_INSTALL) $(TORCH_PIP_ARGS) torch==2.13.0
# hum2band in editable mode, its dependencies (setup.cfg) and pytest.
	$(PIP_INSTALL) --no-build-isolation -e '.[test]'
# --no-deps on purpose: torchcrepe asks for torchaudio, whose PyPI wheel is a CUDA build that
# fails to import beside CPU torch (libc10_cuda.so); hum2band never calls the one function that
# needs it (torchcrepe.load), and hum2band/listen/pitch.py puts a stand-in module in its place.
# basic-pitch 0.4.0 asks for TensorFlow on Linux + Python 3.11; hum2band runs its shipped ONNX
# model with onnxruntime instead. Their real runtime dependencies are listed in setup.cfg.
	$(PIP_INSTALL) --no-deps torchcrepe==0.0.24 basic-pitch==0.4.0
	$(PY) -W ignore -c 'import torch, numpy, scipy, av, librosa, soundfile, soxr, pretty_midi, mido, mir_eval, onnxruntime, resampy, starlette, uvicorn, redis, rq, hum2band; import importlib.util as u; assert u.find_spec("torchcrepe") and u.find_spec("basic_pitch"); assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__; print("setup: ok: hum2band", hum2band.__version__, "with torch", torch.__version__, "in $(VENV)")'
	@touch "$@"

# Installs the missing system packages (and Python 3.11's venv module) with apt-get; a no-op
# when everything is there or when the machine has no apt-get (macOS: see README.md).
system-packages:
	@if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then \
		echo "setup: no apt-get here: install FluidSynth, a GM SoundFont and PortAudio yourself (README.md)"; \
		exit 0; \
	fi; \
	missing=""; \
	for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	$(FIND_PYTHON); \
	if [ -z "$$py" ]; then \
		missing="$$missing python3.11 python3.11-venv"; \
	elif ! "$$py" -c 'import ensurepip, venv' 2>/dev/null; then \
		missing="$$missing python3.11-venv"; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "setup: installing system packages:$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: setup
	@test -f "$(DEMO_INPUT)" || { echo "demo: $(DEMO_INPUT) is missing" >&2; exit 1; }
	$(VENV)/bin/hum2band arrange "$(DEMO_INPUT)" --style $(DEMO_STYLE) --out "$(DEMO_OUT)" --force
	@echo
	@$(PY) -m hum2band.app.describe "$(DEMO_OUT)"

test: setup
	$(PY) -m pytest -q tests

# Not part of `make test`: mutmut plants small bugs in each music module and runs its tests
# (tests/mutation.py; the report is docs/mutation.md). Takes tens of minutes on 2 cores.
mutation: setup
	$(PIP_INSTALL) mutmut==3.8.1
	$(PY) tests/mutation.py

bench: setup
	@ls benchmarks/*.py >/dev/null 2>&1 || { echo "bench: no benchmarks in benchmarks/" >&2; exit 1; }
	@for f in benchmarks/*.py; do \
		case "$$(basename "$$f")" in _*|common*|conftest*) continue;; esac; \
		echo "== $$f"; "$(PY)" "$$f"; \
	done

clean:
	rm -rf out build dist hum2band.egg-info .pytest_cache

distclean: clean
	rm -rf "$(VENV)"
