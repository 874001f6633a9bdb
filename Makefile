# Two commands do all set-up on a fresh machine with Python 3 and make:
#   make lab    install (once) and start the course in JupyterLab on 127.0.0.1
#   make test   install (once) and run the whole test suite
# The virtual environment lives in .venv; it is rebuilt only when pyproject.toml,
# .ci/install-torch or the torch pin (TORCH, recorded in the stamp) changes.
# PYTHON (default python3) must be one of the Python versions the package claims, 3.11-3.13.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0
PYTHON_MIN := 3.11
PYTHON_MAX := 3.13

.PHONY: install lab test lint chromium outputs bench site clean FORCE

export JUPYTER_PLATFORM_DIRS := 1
# Notebooks whose stored outputs `make outputs` refreshes (override: make outputs NB=path.ipynb).
NB ?= notebooks/*.ipynb solutions/*.ipynb

install: $(STAMP)

# torch goes first, the CPU build where there is a choice (.ci/install-torch says which it got),
# and stays pinned for the rest: pip would otherwise swap it for the CUDA build of the index.
# The Python check comes first, before anything is installed.
$(STAMP): pyproject.toml .ci/install-torch $(if $(filter $(TORCH),$(shell cat $(STAMP) 2>/dev/null)),,FORCE)
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; low, high = [tuple(map(int, x.split("."))) for x in sys.argv[1:]]; sys.exit(0 if low <= v <= high else f"make: attn-course needs Python {sys.argv[1]} to {sys.argv[2]}, but $(PYTHON) is {v[0]}.{v[1]}: run make with PYTHON=python{sys.argv[2]} (or another interpreter in that range)")' $(PYTHON_MIN) $(PYTHON_MAX) \
		|| { command -v $(PYTHON) >/dev/null || echo "make: no $(PYTHON) on PATH: run make with PYTHON=python$(PYTHON_MAX) (or another Python $(PYTHON_MIN) to $(PYTHON_MAX))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	TORCH_SPEC=$(TORCH) bash .ci/install-torch $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]' $(TORCH)
	echo '$(TORCH)' > $(STAMP)

FORCE:

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
	$(BIN)/python benchmarks/reports.py --submissions 1000

# The course as a static HTML site (lessons and exercises with their stored outputs): build/site.
site: $(STAMP)
	rm -rf build/site
	$(BIN)/python -m attn_course.site build/site

clean:
	rm -rf $(VENV) grades build dist .pytest_cache .hypothesis
