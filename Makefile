# Set-up on a fresh machine needs only python3 and make: every target builds .venv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test lint browser bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(VENV)/bin/lightctl demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy lightctl drivers scenes schedules web
	$(VENV)/bin/lint-imports

# Headless Chromium for the console's browser tests, and a CJK font so that pages in Chinese render
# (Debian packages; root on CI machines).
BROWSER_PACKAGES := chromium chromium-driver fonts-wqy-microhei
browser:
	@{ command -v chromium >/dev/null 2>&1 && [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; fi; }

# pytest exits 5 when it collected no tests: that is a failure here, never a pass.
test: venv browser lint
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: venv
	$(VENV)/bin/lightctl bench switch --controllers 1000
	$(VENV)/bin/lightctl bench switch --controllers 5000 --rounds 5

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
