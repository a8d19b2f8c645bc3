# syntax=docker/dockerfile:1
# One image for every DinhDanh process; compose.yaml picks the command:
#   IdP          gunicorn wsgi:app                                   (the default CMD, :8000)
#   eKYC worker  flask ekyc worker                                   (needs REDIS_URL)
#   register     gunicorn 'register.app:create_app()'                (:8100)
#   portals      gunicorn 'clients.portal:create_app("public_services")'   (:8201, :8202)
#   jobs         flask db upgrade | python -m register seed | python -m clients setup
# Two stages: `build` resolves the locked dependencies with uv into /app/.venv and compiles the
# message catalogues; `runtime` is python slim with Tesseract, that venv and the code, running
# as an unprivileged user. docs/deployment.md explains the environment it expects.

# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir "uv>=0.5"
WORKDIR /app
# Dependencies first (cached while only the code changes), then the project itself.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev \
 && .venv/bin/pybabel compile -d idp/translations >/dev/null \
 && .venv/bin/pybabel compile -d clients/portal/translations >/dev/null

# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
# tesseract-ocr(-vie): printed fields of the ID card; fonts-ocr-b: the MRZ glyph templates
# (ekyc/document/ocr.py). Everything else the wheels in the venv bring with them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-vie fonts-ocr-b \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /home/idp --uid 10001 --shell /usr/sbin/nologin idp
WORKDIR /app
# Code and venv belong to root and are read-only for the service user; only instance/ (media,
# portal client keys, development secrets) is writable. compose.yaml mounts volumes there.
COPY --from=build /app /app
RUN mkdir -p /app/instance/media /app/instance/clients /app/instance/register \
 && chown -R idp:idp /app/instance
USER idp
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    FLASK_APP=wsgi \
    IDP_ENV=production \
    WEB_CONCURRENCY=2
EXPOSE 8000
# Liveness of the IdP (database and Redis answer); the other services override it in compose.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
# gunicorn reads WEB_CONCURRENCY for the number of worker processes (about one per core).
# --keep-alive 75: longer than the reverse proxy's upstream keep-alive (nginx: 60 s).
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--threads", "8", "--timeout", "60", "--keep-alive", "75", "wsgi:app"]
