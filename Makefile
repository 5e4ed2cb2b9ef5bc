# Quick start: `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_WORKERS ?= 3

.PHONY: demo demo-live bytecode test test-slow chaos bench bench-fleet bench-incremental bench-report profile install \
	postgres-binaries chromium-binary promtool cassettes docs dashboards screenshot clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## The checkout's modules byte-compiled, as pip compiles an installed package's: a command then starts without
## compiling ~150 modules first (about 0.1 s). Only what changed is compiled again.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q reconciler

install: $(STAMP)

## Run the whole job against a local Okta emulator and a local SCIM server (no Okta org needed).
demo: $(STAMP) bytecode
	$(BIN)/reconcile demo

## The demo's servers kept up (until Ctrl-C) after its first dry-run, to try every command and change Okta by hand.
demo-live: $(STAMP)
	$(BIN)/reconcile demo --keep-running

## The default suite (real SCIM server, Okta emulator and PostgreSQL on 127.0.0.1): the set a bare `pytest` runs
## (addopts: -m "not slow"), on TEST_WORKERS pytest-xdist workers. Each worker starts its own servers.
## TEST_WORKERS=0 runs it in one process.
## Bytecode is written even where PYTHONDONTWRITEBYTECODE is set: each worker otherwise rewrites and compiles every
## test module again (pytest's assertion rewriting, ~5 s of CPU a worker), and each `reconcile` child process
## compiles the modules it imports.
test: $(STAMP) postgres-binaries chromium-binary promtool bytecode
	$(BIN)/ruff check reconciler tests benchmarks deploy
	$(BIN)/lint-imports
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

## Long-running tests, not part of `make test`, and the property tests with the `full` Hypothesis profile
## (tests/conftest.py: today's example counts, twice those of `make test`).
test-slow: $(STAMP)
	HYPOTHESIS_PROFILE=full $(BIN)/python -m pytest -m "slow or hypothesis" $(PYTEST_ARGS)

## Crash safety, the long version: applies (tests/run/test_crash_safety.py) and System Log followers
## (tests/run/test_follow_crash.py) SIGKILLed at 300 random points per store backend (CHAOS_KILLS=N for another
## count, CRASH_SEED=N for another seed). About 11 minutes for the applies, 5 per backend for the followers.
chaos: $(STAMP) postgres-binaries
	$(BIN)/python -m pytest -m chaos -s $(PYTEST_ARGS)

## Requests, wall time, CPU and memory at N = 10,000 and 100,000 (benchmarks/bench.py), then tenants reconciled
## per minute with 1, 2 and 3 replicas (benchmarks/fleet.py), then incremental repair from the System Log
## (benchmarks/incremental.py), then `reconcile report` of 1,000 runs at 100,000 users (benchmarks/evidence_report.py);
## not part of `make test`. `make bench N=10000` runs one size only; `make bench N="10000 100000 300000"` adds the
## largest size the memory target names, and prints the bytes per user of the three sizes side by side. About 10
## minutes (12½ with 300,000).
bench: $(STAMP) postgres-binaries bytecode
	$(BIN)/python -m benchmarks.bench $(foreach n,$(N),--n $(n))
	$(BIN)/python -m benchmarks.fleet
	$(BIN)/python -m benchmarks.incremental
	$(BIN)/python -m benchmarks.evidence_report

## Incremental repair at 100,000 users: 100 Okta changes over 60 s followed from the System Log (poll 5 s, 20 ms a
## round trip): time to repair p50/p99, requests per change beside one full audit's, idle cost (about 2 minutes).
bench-incremental: $(STAMP) bytecode
	$(BIN)/python -m benchmarks.incremental

## `reconcile report` of a month at 100,000 users and 1,000 full audits (a store written straight into its tables):
## the page's time, size and peak memory against the 5 s and 5 MB target, and the JSON's and CSV's (about a minute).
bench-report: $(STAMP) bytecode
	$(BIN)/python -m benchmarks.evidence_report

## docs/report.png, the README's picture of a report: the demo's runs, a report of them, and headless Chromium's
## screenshot of its first screen (tests/support/report_screenshot.py).
screenshot: $(STAMP) chromium-binary
	$(BIN)/python -m tests.support.report_screenshot docs/report.png

## Where a 100,000-user dry-run spends its time: pyinstrument's call tree of the dry-run alone (no apply, naive
## baseline, scim2-server, pacing or first-request part), written to profile/ as HTML and text. Installs the
## `profile` extra (pyinstrument) first. Profiled wall times are inflated: not for the record.
profile: $(STAMP) bytecode
	$(BIN)/python -c 'import pyinstrument' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[profile]'
	$(BIN)/python -m benchmarks.bench --n 100000 --dry-run-only --no-scim2 --no-pacing --first-request-attempts 0 \
		--profiler pyinstrument --profile-dir profile

## Tenants reconciled per minute with 1, 2 and 3 replicas sharing a PostgreSQL store (about 3 minutes).
bench-fleet: $(STAMP) postgres-binaries
	$(BIN)/python -m benchmarks.fleet

## PostgreSQL server binaries for the store tests, which start a throwaway server (tests/support/postgres.py).
## Installed with apt-get when missing and we are root (as in CI); otherwise a note says what to install
## (the PostgreSQL tests are then skipped locally, and fail under CI=true). No cluster is created or started.
postgres-binaries:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
		|| [ -n "$$RECONCILER_TEST_PG_BIN$$RECONCILER_TEST_POSTGRES_URL" ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing the PostgreSQL server binaries for the store tests: apt-get install postgresql"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq \
		&& apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null \
		&& sed -i 's/^#* *create_main_cluster *=.*/create_main_cluster = false/' \
			/etc/postgresql-common/createcluster.conf \
		&& apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	else \
		echo "note: no PostgreSQL server binaries, so the PostgreSQL store tests will be skipped;" \
			"install them with: sudo apt-get install postgresql"; \
	fi

## Headless Chromium for the browser tests (tests/support/chromium.py renders pages, screenshots them, prints
## them to PDF and proves they make no network request). Installed with apt-get when missing and we are root;
## otherwise a note says what to install (the browser tests then skip locally, and fail under CI=true). The package
## lists are refreshed first, so that CI gets the current Chromium (Debian's security updates): the version whose
## own start-up calls tests/support/chromium.py sets apart.
chromium-binary:
	@if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 \
		|| [ -n "$$RECONCILER_TEST_CHROMIUM" ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Chromium for the browser tests: apt-get install chromium"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt_get="apt-get -o DPkg::Lock::Timeout=300"; \
		$$apt_get update -qq && $$apt_get install -y -qq --no-install-recommends chromium >/dev/null; \
	else \
		echo "note: no Chromium, so the browser tests will be skipped;" \
			"install it with: sudo apt-get install chromium"; \
	fi

## promtool, for the alert rules' tests (tests/deploy): Debian's prometheus package, installed with apt-get when
## missing and we are root (as in CI); otherwise a note (the rules' tests are then skipped locally, and fail under
## CI=true). Its server is not started.
promtool:
	@if command -v promtool >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing promtool for the alert rules' tests: apt-get install prometheus"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	else \
		echo "note: no promtool, so the alert rules' tests will be skipped; install it with: sudo apt-get install prometheus"; \
	fi

## The Grafana dashboard, deploy/grafana/okta-reconciler.json, written by deploy/grafana/build.py (a test fails when
## the checked-in JSON is stale).
dashboards: $(STAMP)
	$(BIN)/python deploy/grafana/build.py

## The configuration reference, docs/configuration.md, written from the configuration's model
## (reconciler/config/); a test fails when the checked-in page is stale.
docs: $(STAMP)
	$(BIN)/python -m reconciler.config.reference > docs/configuration.md

## Re-record cassettes/ from a local scenario (credentials are filtered out).
cassettes: $(STAMP)
	$(BIN)/python -m tests.support.cassette_scenario

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis reconciler.db demo-state
