# orderpipe — every target sets up what it needs; nothing relies on the machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORE := $(VENV)/.core
DEMO_HOME ?= .demo-home

.PHONY: venv demo test browser lint bench mutate mutate-changed synth bootstrap deploy destroy destroy-data clean
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION = 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 18,20
CDK := npx --yes aws-cdk@2.1148.1
# CloudFormation changes that widen IAM permissions or security groups wait for a "y" (CI: APPROVAL=never).
APPROVAL ?= broadening
CDK_APP := $(abspath $(BIN))/python -m infra.app

# Two steps in one virtualenv: the core (what `demo` needs: 210 MB; `make demo` 15-22 s in all), then everything
# the tests, the benchmark and the CDK app need (1.4 GB in all, Node.js included).
$(CORE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -e .
	touch $(CORE)

$(STAMP): $(CORE)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(CORE)
	rm -rf $(DEMO_HOME) && mkdir -p $(DEMO_HOME)/samples
	$(BIN)/python benchmarks/generate.py $(DEMO_HOME)/samples/week.csv --rows 2000 --days 7 --start 2025-07-01
	@# exit 1 means a file was rejected: invalid_order.csv is, on purpose. 2 or 3 would be a real failure.
	$(BIN)/orderpipe --home $(DEMO_HOME) run data/sample/valid_order.csv data/sample/invalid_order.csv \
		$(DEMO_HOME)/samples/week.csv 2>/dev/null; test $$? -le 1
	@echo; echo "== orderpipe kpis daily"; $(BIN)/orderpipe --home $(DEMO_HOME) kpis daily
	@echo; echo "== orderpipe kpis category --to 2025-07-02"; $(BIN)/orderpipe --home $(DEMO_HOME) kpis category --to 2025-07-02
	@echo; echo "== orderpipe batches"; $(BIN)/orderpipe --home $(DEMO_HOME) batches
	@echo; echo "== the dashboard and its API: run this, open the address it prints (Ctrl-C stops)"
	@echo "$(BIN)/orderpipe --home $(DEMO_HOME) serve"

# The venv's bin/ first on PATH: the CDK tests find the pinned Node.js installed there.
# The dashboard's browser test needs Chromium: `browser` installs it first when it is missing.
test: $(STAMP) browser
	$(BIN)/ruff check src tests benchmarks infra
	$(BIN)/mypy src
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest

# Debian's chromium and the version-matched chromium-driver, for tests/web/test_browser.py (which
# fails without them, never skips): installed from Debian's packages when missing, which needs
# root; otherwise make stops here and says what to run. No browser is ever downloaded.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium and chromium-driver (the dashboard's browser test)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "make test: the dashboard's browser test needs Debian's chromium and chromium-driver," \
			"which are missing and cannot be installed from here (it takes root and apt-get). Run:" >&2; \
		echo "    sudo sh -c 'apt-get update && apt-get install -y chromium chromium-driver'" >&2; \
		exit 1; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks infra
	$(BIN)/mypy src

# Every figure against its target (~25 min here); `make bench BENCH_ARGS=--quick` for a shorter run.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# Mutation testing of core/, workflow.py and its rooms against the fast tests (not part of `test`; see
# docs/testing.md). mutmut works on a copy in mutants/, never on src/; each run starts afresh.
mutate: $(STAMP)
	$(BIN)/pip install --quiet -e '.[mutate]'
	rm -rf mutants
	$(BIN)/python tests/mutation.py run
	$(BIN)/python tests/mutation.py report

# Before a change lands: mutate only the functions it changed since BASE (committed or not).
BASE ?= main
mutate-changed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[mutate]'
	$(BIN)/python tests/mutation.py changed $(BASE)

# Offline: writes cdk.out/ and runs cdk-nag; no AWS account needed.
# The CDK needs Node.js: the pinned one in the virtualenv comes first on PATH.
synth: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -c "from infra.app import build_app; app, _ = build_app(outdir='cdk.out'); app.synth()"
	@echo "templates: cdk.out/OrderpipeData.template.json (data), cdk.out/Orderpipe.template.json (processing)"

# Need AWS credentials, Docker (the image asset) and Node.js (the CDK CLI). Settings: cdk.json or -c k=v.
# Once per account and region, before the first deploy:
bootstrap: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(CDK) bootstrap --app "$(CDK_APP)" $(CDK_ARGS)

# Two stacks: OrderpipeData (the bucket and the tables) and Orderpipe (everything that processes
# and serves them). `destroy` removes Orderpipe only: the data stays, and `deploy` finds it again.
deploy: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(CDK) deploy --app "$(CDK_APP)" --require-approval $(APPROVAL) --all $(CDK_ARGS)

destroy: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(CDK) destroy --app "$(CDK_APP)" --force Orderpipe $(CDK_ARGS)

# The data stack too, once the typed name matches: with removal=retain (the default) its tables
# and buckets stay in the account even then (delete them in the console); with removal=destroy
# they go, files and KPIs included.
destroy-data: $(STAMP)
	@printf "This removes the stack OrderpipeData (bucket and tables). Type OrderpipeData to go on: "; \
		read answer; test "$$answer" = OrderpipeData || { echo "nothing removed"; exit 1; }
	PATH="$(abspath $(BIN)):$$PATH" $(CDK) destroy --app "$(CDK_APP)" --force Orderpipe OrderpipeData $(CDK_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache cdk.out
