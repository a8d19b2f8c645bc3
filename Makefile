# DinhDanh: `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
UV ?= $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen
export FLASK_APP := wsgi
HOST ?= 127.0.0.1
IDP_PORT ?= 8000
REGISTER_PORT ?= 8100

.PHONY: help
help: ## show this list
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: uv
uv: ## install uv with pip when it is missing
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.5"

.PHONY: install
install: uv ## install the locked Python dependencies into .venv
	$(UV) sync --frozen --python $(PYTHON)
	$(MAKE) translations

.PHONY: translations
translations: ## compile the message catalogues (vi, en)
	$(RUN) pybabel compile -d idp/translations >/dev/null

.PHONY: migrate
migrate: ## apply database migrations (DATABASE_URL, SQLite by default)
	$(RUN) flask db upgrade

.PHONY: seed
seed: ## signing keys and the development demo accounts (refused in production)
	$(RUN) flask seed

.PHONY: register-seed
register-seed: ## the register stub's 10,000 synthetic citizens (idempotent, ~2 s)
	$(RUN) python -m register seed

.PHONY: demo-cards
demo-cards: install ## photos of synthetic ID cards (+ selfies) to try the onboarding, in instance/demo-cards/
	$(RUN) python -m ekyc.demo_cards

.PHONY: run
run: install migrate seed register-seed ## serve the IdP at :8000 and the register stub at :8100 (embedded defaults)
	@echo ""
	@echo "  DinhDanh identity provider: http://$(HOST):$(IDP_PORT)/"
	@echo "  Discovery:   http://$(HOST):$(IDP_PORT)/.well-known/openid-configuration"
	@echo "  Sign in at:  http://$(HOST):$(IDP_PORT)/account"
	@echo "      citizen  ID number 001199000001  password Citizen-Demo-1"
	@echo "  Create an electronic identity: http://$(HOST):$(IDP_PORT)/onboarding/"
	@echo "      test card images: make demo-cards (written to instance/demo-cards/)"
	@echo "  Population register stub: http://$(HOST):$(REGISTER_PORT)/openapi.json"
	@echo "  Register a portal: POST http://$(HOST):$(IDP_PORT)/register (open in development)"
	@echo "  Stop with Ctrl-C."
	@echo ""
	@trap 'kill 0' EXIT; \
	REGISTER_BASE_URL=http://$(HOST):$(REGISTER_PORT) \
	REGISTER_TRUSTED_ISSUER=$${ISSUER:-http://$(HOST):$(IDP_PORT)} \
	REGISTER_IDP_JWKS_URL=$${ISSUER:-http://$(HOST):$(IDP_PORT)}/jwks \
	REGISTER_NOTIFY_URL=$${ISSUER:-http://$(HOST):$(IDP_PORT)}/ekyc/register-events \
	$(RUN) gunicorn --bind $(HOST):$(REGISTER_PORT) --workers 1 --threads 4 'register.app:create_app()' & \
	if [ -n "$$REDIS_URL" ]; then REGISTER_URL=http://$(HOST):$(REGISTER_PORT) $(RUN) flask ekyc worker & fi; \
	ISSUER=$${ISSUER:-http://$(HOST):$(IDP_PORT)} REGISTER_URL=http://$(HOST):$(REGISTER_PORT) \
	$(RUN) gunicorn --bind $(HOST):$(IDP_PORT) --workers 1 --threads 8 --access-logfile - wsgi:app

.PHONY: test
test: install ## run the whole test suite (embedded defaults, or DATABASE_URL / REDIS_URL)
	$(RUN) pytest

.PHONY: lint
lint: ## ruff
	$(RUN) ruff check idp ekyc register bench tests wsgi.py

.PHONY: bench
bench: install ## IdP versus node oidc-provider (see bench/README.md)
	$(RUN) python bench/run.py

.PHONY: messages
messages: ## extract UI strings and update the catalogues
	$(RUN) pybabel extract -F babel.cfg -k _l -o idp/translations/messages.pot idp ekyc
	$(RUN) pybabel update -i idp/translations/messages.pot -d idp/translations
