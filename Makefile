# Two commands do all set-up on a fresh machine with Python 3 and make:
#   make lab    install (once) and start the course in JupyterLab on 127.0.0.1
#   make test   install (once) and run the whole test suite
# The virtual environment lives in .venv; it is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0

.PHONY: install lab test lint chromium outputs bench site clean

export JUPYTER_PLATFORM_DIRS := 1
# Notebooks whose stored outputs `make outputs` refreshes (override: make outputs NB=path.ipynb).
NB ?= notebooks/*.ipynb solutions/*.ipynb

install: $(STAMP)

# torch goes first, the CPU build where there is a choice (.ci/install-torch says which it got),
# and stays pinned for the rest: pip would otherwise swap it for the CUDA build of the index.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	TORCH_SPEC=$(TORCH) bash .ci/install-torch $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]' $(TORCH)
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/attn-course lab

lint: $(STAMP)
	$(BIN)/ruff check .

# Debian's Chromium drives the browser tests; the suite skips them only where none can be had.
chromium:
	@command -v chromium >/dev/null 2>&1 || bash .ci/install-chromium || echo "chromium unavailable: browser tests will be skipped"

test: $(STAMP) chromium lint
	$(BIN)/attn-course release --check
	$(BIN)/python -m pytest -n auto

# Re-execute notebooks top to bottom in a fresh kernel and store their outputs (for nbval).
outputs: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.record_timing=False --ExecutePreprocessor.timeout=120 $(NB)

# The benchmarks the README quotes (not timed tests).
bench: $(STAMP)
	$(BIN)/python benchmarks/grading.py
	$(BIN)/python benchmarks/efficient_attention.py --json attn_course/efficient_attention.json

# The course as a static HTML site (lessons and exercises with their stored outputs): build/site.
site: $(STAMP)
	rm -rf build/site
	$(BIN)/python -m attn_course.site build/site

clean:
	rm -rf $(VENV) grades build dist .pytest_cache .hypothesis
