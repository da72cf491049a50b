# Dienstweg: `make run` serves the demo on the embedded default, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# KERN, the design system, comes from the npm registry exactly as package-lock.json pins it;
# collectstatic and the dev server take its CSS and fonts from node_modules (STATICFILES_DIRS).
NODE_STAMP := node_modules/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# WebSocket frames over 64 KiB close the socket; a client that stops answering pings is dropped.
DAPHNE_LIMITS := --websocket-max-message-size 65536 --websocket-max-frame-size 65536 --ping-interval 20 --ping-timeout 30
# So is a client that stops reading: its send buffer full for 10 s, or 1 MiB queued behind it.
# Only config.serve knows these flags (plain daphne, which bench/ runs, would refuse them).
SLOW_CLIENT_LIMITS := --websocket-stall-timeout 10 --websocket-max-backlog 1048576

# The embedded default: SQLite in var/, in-memory channel layer, generated secrets in var/.
run test: export DIENSTWEG_DEBUG ?= true
# Links in e-mails and the stamp's QR code point at the address `make run` serves.
export DIENSTWEG_BASE_URL ?= http://$(HOST):$(PORT)

.PHONY: run test lint layers typecheck messages clean assets

# The front end's packages alone (make run and make test do it first).
assets: $(NODE_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

messages: $(STAMP)
	cd dienstweg && ../$(BIN)/django-admin compilemessages --ignore=.venv >/dev/null
	cd referrals && ../$(BIN)/django-admin compilemessages --ignore=.venv >/dev/null
	cd applications && ../$(BIN)/django-admin compilemessages --ignore=.venv >/dev/null
	cd messaging && ../$(BIN)/django-admin compilemessages --ignore=.venv >/dev/null
	cd conferences && ../$(BIN)/django-admin compilemessages --ignore=.venv >/dev/null
	cd audit && ../$(BIN)/django-admin compilemessages --ignore=.venv >/dev/null
	cd privacy && ../$(BIN)/django-admin compilemessages --ignore=.venv >/dev/null
	cd config && ../$(BIN)/django-admin compilemessages --ignore=.venv >/dev/null

run: $(STAMP) $(NODE_STAMP)
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py load_demo
	@echo "Dienstweg läuft auf http://$(HOST):$(PORT)/  (Strg+C beendet)"
	@# The audit sealer and the outbox's e-mail sender run beside Daphne and stop with it.
	$(BIN)/python manage.py audit_seal --loop --interval 10 & sealer=$$!; \
	$(BIN)/python manage.py send_notifications --loop --interval 5 & sender=$$!; \
	trap 'kill $$sealer $$sender 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python -m config.serve $(DAPHNE_LIMITS) $(SLOW_CLIENT_LIMITS) -b $(HOST) -p $(PORT) config.asgi:application

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The floors (pyproject.toml, [tool.importlinter]): imports only run downwards.
layers: $(STAMP)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy config dienstweg audit referrals applications messaging conferences privacy

# One test worker per core (pytest-xdist), each with its own test database and, on Redis,
# its own channel prefix and cache database (config/settings.py); TEST_WORKERS=0 runs the
# suite in this process.
TEST_WORKERS ?= auto
test: $(STAMP) $(NODE_STAMP) lint layers typecheck
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var staticfiles node_modules
