# One image for the IdP, its eKYC workers and the register stub (Tesseract for document OCR). Runs as a non-root user.
FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/app/.venv
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-vie \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir "uv>=0.5" \
 && useradd --system --create-home --home-dir /home/idp --uid 10001 idp
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev \
 && /app/.venv/bin/pybabel compile -d idp/translations >/dev/null \
 && mkdir -p /app/instance && chown -R idp /app/instance
USER idp
ENV IDP_ENV=production PATH=/app/.venv/bin:$PATH
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "8", "wsgi:app"]
