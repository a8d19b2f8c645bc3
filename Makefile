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
PORTAL1_PORT ?= 8201
PORTAL2_PORT ?= 8202
NODE_PORTAL_PORT ?= 8203

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
	$(RUN) pybabel compile -d clients/portal/translations >/dev/null

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

.PHONY: demo-case
demo-case: ## send one more onboarding that the pipeline sends to review, through the running IdP's API
	$(RUN) python -m ekyc.review.demo --issuer $${ISSUER:-http://$(HOST):$(IDP_PORT)}

.PHONY: portals-setup
portals-setup: ## register the demo portals (:8201, :8202, node :8203) with the IdP, keys in instance/clients/
	$(RUN) python -m clients setup --issuer $${ISSUER:-http://$(HOST):$(IDP_PORT)} --host $(HOST)

.PHONY: run
run: install migrate seed register-seed portals-setup ## serve the IdP (:8000), the register stub (:8100) and the demo portals (:8201, :8202, :8203)
	@echo ""
	@echo "  DinhDanh identity provider: http://$(HOST):$(IDP_PORT)/"
	@echo "  Discovery:   http://$(HOST):$(IDP_PORT)/.well-known/openid-configuration"
	@echo "  Sign in at:  http://$(HOST):$(IDP_PORT)/account"
	@echo "      citizen  ID number 001199000001  password Citizen-Demo-1"
	@echo "  Create an electronic identity: http://$(HOST):$(IDP_PORT)/onboarding/"
	@echo "      test card images: make demo-cards (written to instance/demo-cards/)"
	@echo "  Population register stub: http://$(HOST):$(REGISTER_PORT)/openapi.json"
	@echo "  Register a portal: POST http://$(HOST):$(IDP_PORT)/register (open in development)"
	@echo "  Demo portals (single sign-on and single logout across them):"
	@echo "      public services  http://$(HOST):$(PORTAL1_PORT)/   (one service needs identity level 2)"
	@echo "      social insurance http://$(HOST):$(PORTAL2_PORT)/   (asks for a second factor)"
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  echo "      node example     http://$(HOST):$(NODE_PORTAL_PORT)/   (npm openid-client)"; \
	else echo "      node example     not started: install node and npm"; fi
	@echo "  Integration guide: docs/relying-parties.md"
	@echo "  Operator console: http://$(HOST):$(IDP_PORT)/ops/   (guide: docs/operators.md)"
	@echo "      operator   ops-demo        password Operator-Demo-1    TOTP secret XKXEU6QDYYMCJXWKES753A25I62WNK64"
	@echo "      supervisor ops-supervisor  password Supervisor-Demo-1  TOTP secret UXKYYKCCICAK777IZWCKRGQLI7GUGE67"
	@echo "      auditor    ops-auditor     password Auditor-Demo-1     TOTP secret P5ZO64YE4MV3H3QCVKL3YSO5ZZDPQX73"
	@echo "      code now:  uv run python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\""
	@echo "      a case the pipeline sent to review is submitted once the IdP answers (make demo-case adds another)"
	@echo "  Stop with Ctrl-C."
	@echo ""
	@trap 'kill 0' EXIT; \
	REGISTER_BASE_URL=http://$(HOST):$(REGISTER_PORT) \
	REGISTER_TRUSTED_ISSUER=$${ISSUER:-http://$(HOST):$(IDP_PORT)} \
	REGISTER_IDP_JWKS_URL=$${ISSUER:-http://$(HOST):$(IDP_PORT)}/jwks \
	REGISTER_NOTIFY_URL=$${ISSUER:-http://$(HOST):$(IDP_PORT)}/ekyc/register-events \
	$(RUN) gunicorn --no-control-socket --bind $(HOST):$(REGISTER_PORT) --workers 1 --threads 4 'register.app:create_app()' & \
	$(RUN) gunicorn --no-control-socket --bind $(HOST):$(PORTAL1_PORT) --workers 1 --threads 4 'clients.portal:create_app("public_services")' & \
	$(RUN) gunicorn --no-control-socket --bind $(HOST):$(PORTAL2_PORT) --workers 1 --threads 4 'clients.portal:create_app("social_insurance")' & \
	if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  ( cd clients/node-example && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; } && \
	    PORT=$(NODE_PORTAL_PORT) PORTAL_INSTANCE=$(CURDIR)/instance node server.mjs ) & \
	fi; \
	if [ -n "$$REDIS_URL" ]; then REGISTER_URL=http://$(HOST):$(REGISTER_PORT) $(RUN) flask ekyc worker & fi; \
	if [ ! -f instance/demo-review-case.txt ]; then \
	  ( $(RUN) python -m ekyc.review.demo --issuer http://$(HOST):$(IDP_PORT) --wait-start 120 > instance/demo-review-case.txt 2>&1 \
	      && echo "  Operator console: $$(cat instance/demo-review-case.txt), waiting in the queue" \
	      || { echo "  demo review case not created: $$(cat instance/demo-review-case.txt)"; rm -f instance/demo-review-case.txt; } ) & \
	fi; \
	ISSUER=$${ISSUER:-http://$(HOST):$(IDP_PORT)} REGISTER_URL=http://$(HOST):$(REGISTER_PORT) \
	$(RUN) gunicorn --no-control-socket --bind $(HOST):$(IDP_PORT) --workers 1 --threads 8 wsgi:app

.PHONY: stack
stack: install ## the compose.yaml topology without Docker: real PostgreSQL + Redis (AOF), gunicorn, eKYC worker (data in instance/stack/)
	HOST=$(HOST) IDP_PORT=$(IDP_PORT) REGISTER_PORT=$(REGISTER_PORT) PORTAL1_PORT=$(PORTAL1_PORT) PORTAL2_PORT=$(PORTAL2_PORT) scripts/stack.sh start

.PHONY: stack-stop
stack-stop: ## stop what `make stack` started, PostgreSQL and Redis included (data is kept)
	scripts/stack.sh stop

.PHONY: test
test: install ## run the whole test suite (embedded defaults, or DATABASE_URL / REDIS_URL)
	$(RUN) pytest

.PHONY: lint
lint: ## ruff
	$(RUN) ruff check idp ekyc register clients bench tests wsgi.py

.PHONY: bench
bench: install ## IdP versus node oidc-provider (see bench/README.md)
	$(RUN) python bench/run.py

.PHONY: national-day
national-day: ## load run against a running `make stack`: cost per operation, 10-min mixed profile, capacity model (bench/README.md)
	$(RUN) python bench/national_day.py

.PHONY: messages
messages: ## extract UI strings and update the catalogues
	$(RUN) pybabel extract -F babel.cfg -k _l -o idp/translations/messages.pot idp ekyc
	$(RUN) pybabel update -i idp/translations/messages.pot -d idp/translations
	$(RUN) pybabel extract -F babel.cfg -k _l --no-location --sort-output -o clients/portal/translations/messages.pot clients/portal
	$(RUN) pybabel update -i clients/portal/translations/messages.pot -d clients/portal/translations --no-fuzzy-matching
