# R1 Studio: `make run` starts the studio, `make test` runs the suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# CPU machines take the local CPU build of torch; GPU nodes install the `gpu` extra instead.
TORCH_SPEC ?= torch==2.13.0
PORT ?= 8000
export PYTHONUNBUFFERED := 1
# Quiet: errors only, so that what `make run` prints last (the address, the admin and where its
# password is) is not lost among the packages' output.
PIP_INSTALL := $(BIN)/pip install -qq --disable-pip-version-check --progress-bar off \
	--root-user-action=ignore

.PHONY: run test lint format setup clean bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the Python packages into $(VENV) (first run only, a minute or two)..."
	@$(PIP_INSTALL) --upgrade pip
	@$(PIP_INSTALL) '$(TORCH_SPEC)'
	@$(PIP_INSTALL) -e '.[dev,ray]'
	@# Code rewards run in bubblewrap (pipeline/rewards/sandbox.py); best effort, root + apt only.
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap \
		>/dev/null; } || echo "warning: bubblewrap (bwrap) is missing: code rewards score None" \
		"until it is installed (apt-get install bubblewrap) or R1STUDIO_SANDBOX=guard is set"
	@touch $(STAMP)

run: $(STAMP)
	@$(BIN)/python manage.py studio --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
