# Maestro — the two front-door commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# No telemetry leaves this machine.
export FEAST_USAGE := False
export RAY_USAGE_STATS_ENABLED := 0
export DO_NOT_TRACK := 1
export MLFLOW_ENABLE_TELEMETRY := false
# Ray Serve's fast proxy path: HAProxy ingress, replicas serving HTTP themselves (its
# latency against Ray's default proxy: BENCHMARKS.md, "Serving: notes").
export RAY_SERVE_ENABLE_HA_PROXY := 1
export RAY_SERVE_THROUGHPUT_OPTIMIZED := 1

.PHONY: install lock ext run test test-all test-deps lint bench docs clean

$(STAMP): pyproject.toml setup.py requirements/lock.txt $(wildcard */_*.pyx */*/_*.pyx) $(wildcard */_*.pxd */*/_*.pxd)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first, or pip pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# every version pinned to what CI tested (requirements/lock.txt; refresh: make lock)
	$(PY) -m pip install -q -c requirements/lock.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Refresh the lock to the newest versions pyproject.toml allows (then make test, commit):
# uv resolves for Linux x86-64 and Python 3.11, the platform CI runs on.
lock: install
	$(PY) -m pip install -q 'uv>=0.5'
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --upgrade -q --no-annotate \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  --custom-compile-command "make lock" -o requirements/lock.txt

# Rebuild the compiled hot loops (*/_*.pyx) in place after editing one.
ext: install
	$(PY) setup.py -q build_ext --inplace

run: install
	$(VENV)/bin/maestro init
	$(VENV)/bin/maestro serve --engine ray --host 127.0.0.1 --port 8000

# redis-server for the feature store's Redis integration test (tests start it themselves);
# chromium and chromium-driver for the dashboard's browser test.
test-deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "make test-deps: installing Debian package redis-server with $${SUDO:-root} apt-get (the Redis tests start it on 127.0.0.1)"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server; }
	@# Debian's headless Chromium + chromedriver for the dashboard's browser test
	@{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "make test-deps: installing Debian packages chromium chromium-driver with $${SUDO:-root} apt-get (the dashboard's browser test)"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; }
	@echo "make test-deps: redis-server, chromium and chromedriver present"

# lint-imports first: a wrong arrow between packages fails the run before any test
test: install test-deps
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -m "not slow" --durations=15

test-all: install test-deps
	$(PY) -m pytest -q

# ruff, then the package layers (import-linter contracts in pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# README's table of environment variables, generated from serving/settings.py
docs: install
	$(PY) -m serving.settings_doc

bench: install
	$(PY) -m benchmarks.bench_decide --write

clean:
	rm -rf $(VENV) .pytest_cache maestro-data
