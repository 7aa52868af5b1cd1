# syntax=docker/dockerfile:1
# agogosml app: scores event batches with an MLflow model (`agogosml serve app`).
#   docker build -f docker/app.Dockerfile --build-arg VERSION=0.1.0 \
#     --build-arg GIT_SHA=$(git rev-parse --short HEAD) -t agogosml/agogosml-app:0.1.0 .
# The three service Dockerfiles differ only in the service's name, port, env prefix and lock
# (tests/packaging/test_images.py keeps them in step). Runs as a non-root user and with a
# read-only root filesystem: mount a writable /tmp (HOME and TMPDIR point there) and, for
# the file transport or a local MLflow store, a volume on /data (the working directory).
# Installs requirements/app.txt, the app extra (MLflow, scikit-learn, pandas),
# with every file's hash checked (`make lock` writes the locks).
# The base image is pinned by tag; to pin it by digest too, pass the full reference:
#   --build-arg PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm@sha256:<digest>

ARG PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

FROM base AS builder
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, from the lock alone: this layer is rebuilt only when the lock changes.
COPY requirements/app.txt requirements/build.txt requirements/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes -r requirements/app.txt
# The build backend from its lock too, in a virtualenv of its own that stays in this stage.
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes -r requirements/build.txt
COPY pyproject.toml README.md LICENSE ./
COPY agogosml/ agogosml/
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
    && pip install --no-cache-dir --no-deps /tmp/dist/agogosml-*.whl

FROM base AS runtime
RUN groupadd --gid 10001 agogosml \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin agogosml \
    && install --directory --owner=10001 --group=10001 --mode=0750 /data
COPY --from=builder /opt/venv /opt/venv
ENV PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    MLFLOW_DISABLE_TELEMETRY=true \
    AGOGOSML_APP_HOST=0.0.0.0
WORKDIR /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AGOGOSML_APP_PORT', '8000') + '/healthz', timeout=4)"]
ARG PYTHON_IMAGE
ARG VERSION=dev
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="agogosml-app" \
      org.opencontainers.image.description="agogosml app: scores event batches with an MLflow model" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_SHA}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
ENTRYPOINT ["python", "-m", "agogosml.services.app"]
