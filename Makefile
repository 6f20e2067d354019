# Two entry points, both from a fresh clone: `make demo` (the whole chain on the built-in
# default model, CPU only) and `make test`. Both create .venv on first use.
# `make default-onnx` regenerates the shipped default ONNX from the shipped checkpoint
# (after retraining it or changing the exporter). `make triton-venv` builds the second venv
# that `fcn-edge serve` and its tests run from: PyTriton's Triton server loads the Python
# interpreter's shared libpython, which Debian's /usr/bin/python3 has and a pyenv build may
# not; `make test` builds it when it can, and the server tests skip with the reason when not.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVE_PYTHON ?= /usr/bin/python3
TRITON_VENV := .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed

.PHONY: demo test default-onnx triton-venv clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build from PyTorch's CPU index: PyPI's torch wheel pulls multi-GB CUDA wheels.
	# --retries 0: where that index is unreachable (our offline CI mirrors carry the same
	# wheel), pip gives up on it at once instead of retrying for a minute per package.
	$(BIN)/python -m pip install -q 'torch==2.13.0+cpu' --extra-index-url https://download.pytorch.org/whl/cpu --retries 0
	$(BIN)/python -m pip install -q -e '.[export,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fcn-edge demo

test: $(STAMP)
	-@$(MAKE) --no-print-directory triton-venv || echo "no serving venv ($(SERVE_PYTHON) -m venv failed): the Triton server tests will skip"
	$(BIN)/python -m pytest -q

triton-venv: $(TRITON_STAMP)

$(TRITON_STAMP): pyproject.toml
	$(SERVE_PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install -q --upgrade pip
	$(TRITON_VENV)/bin/python -m pip install -q -e '.[serve]'
	touch $(TRITON_STAMP)

default-onnx: $(STAMP)
	$(BIN)/python tools/make_default_onnx.py

clean-venv:
	rm -rf $(VENV) $(TRITON_VENV)
