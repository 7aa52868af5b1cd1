# syntax=docker/dockerfile:1
# agogosml's service images: one target per service (agogosml/services/registry.py).
#   target          image                    installs                 port
#   input-reader    agogosml-input-reader    requirements/reader.txt  8002
#   app             agogosml-app             requirements/app.txt     8000
#   output-writer   agogosml-output-writer   requirements/core.txt    8001
#   monitor         agogosml-monitor         requirements/monitor.txt 8005
#   spark           agogosml-spark           requirements/spark.txt   (a Spark job, no port)
#
#   docker build --target app --build-arg VERSION=0.1.0 \
#     --build-arg GIT_SHA=$(git rev-parse --short HEAD) -t agogosml/agogosml-app:0.1.0 .
# (`make images` builds the four services; the Spark image is built the same way with
# --target spark -t agogosml/agogosml-spark:0.1.0.)
#
# Every stage before the targets is shared: `base` (Python, and where the virtualenv goes),
# `wheel` (the project's wheel), one `builder-<lock>` per lock (a virtualenv with the lock
# and the wheel) and `runtime` (user, environment and labels). A target adds its service
# only: the virtualenv of its lock, its port, health check, title and entrypoint.
# The writer installs requirements/core.txt, the core only: no MLflow, scikit-learn, pandas
# or kubernetes; the reader requirements/reader.txt, the core plus its privacy stage
# (cryptography, Presidio and spaCy's small English pipeline, so free text is scanned without
# downloading a model); the app requirements/app.txt, the app extra (MLflow,
# scikit-learn, pandas); the monitor requirements/monitor.txt (the app's, plus psycopg and
# PyYAML). Every file's hash is checked (`make lock` writes the locks).
# Runs as a non-root user and with a read-only root filesystem: mount a writable /tmp (HOME
# and TMPDIR point there) and, for the file transport or a local MLflow store, a volume on
# /data (the working directory).
# The base image is pinned by tag; to pin it by digest too, pass the full reference:
#   --build-arg PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm@sha256:<digest>
# The Spark image also takes a Java runtime (Eclipse Temurin's, self-contained in
# /opt/java/openjdk) and resolves Spark's Kafka connector with Maven (tools/spark/pom.xml);
# JAVA_IMAGE and MAVEN_IMAGE are pinned by tag and take a digest the same way.

ARG PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm
ARG JAVA_IMAGE=docker.io/library/eclipse-temurin:17.0.8.1_1-jre-jammy
ARG MAVEN_IMAGE=docker.io/library/maven:3.9.9-eclipse-temurin-17

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# The project's wheel, built by the build lock's backend in a virtualenv of its own (no
# build isolation, which would fetch hatchling unpinned). Only the wheel leaves this stage.
FROM base AS wheel
WORKDIR /src
COPY requirements/build.txt requirements/
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes -r requirements/build.txt
COPY pyproject.toml README.md LICENSE ./
COPY agogosml/ agogosml/
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /tmp/dist .

# A service's virtualenv, one builder per lock. Dependencies first, from the lock alone: this
# layer is rebuilt only when the lock changes. Then the project, without dependencies.
FROM base AS builder-core
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements/core.txt requirements/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes -r requirements/core.txt
COPY --from=wheel /tmp/dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps /tmp/dist/agogosml-*.whl

FROM base AS builder-reader
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements/reader.txt requirements/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes -r requirements/reader.txt
COPY --from=wheel /tmp/dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps /tmp/dist/agogosml-*.whl

FROM base AS builder-app
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements/app.txt requirements/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes -r requirements/app.txt
COPY --from=wheel /tmp/dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps /tmp/dist/agogosml-*.whl

FROM base AS builder-monitor
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements/monitor.txt requirements/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes -r requirements/monitor.txt
COPY --from=wheel /tmp/dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps /tmp/dist/agogosml-*.whl

# The Spark image's environment: the spark lock (pyspark, the app's and the reader's
# libraries), the project, and Spark's Kafka connector among pyspark's own jars, so every
# JVM of the job (driver and executors) has it on its classpath.
FROM ${MAVEN_IMAGE} AS spark-jars
WORKDIR /src
COPY tools/spark/pom.xml ./
RUN mvn -q -B --strict-checksums dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory=/jars

FROM ${JAVA_IMAGE} AS jre

FROM base AS builder-spark
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements/spark.txt requirements/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes -r requirements/spark.txt
COPY --from=wheel /tmp/dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps /tmp/dist/agogosml-*.whl
COPY --from=spark-jars /jars/ /opt/venv/lib/python3.11/site-packages/pyspark/jars/

# What every service image shares: its user, an environment for a read-only root
# filesystem, and the labels that say which build it is.
FROM base AS runtime
RUN groupadd --gid 10001 agogosml \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin agogosml \
    && install --directory --owner=10001 --group=10001 --mode=0750 /data
ENV PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    MLFLOW_DISABLE_TELEMETRY=true
WORKDIR /data
USER 10001:10001
ARG PYTHON_IMAGE
ARG VERSION=dev
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_SHA}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# The input reader: consumes and validates events, forwards them to the app, dead-letters
# bad input, commits offsets once the chain acknowledged (`agogosml serve input_reader`).
FROM runtime AS input-reader
COPY --from=builder-reader /opt/venv /opt/venv
ENV AGOGOSML_READER_HOST=0.0.0.0
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AGOGOSML_READER_PORT', '8002') + '/healthz', timeout=4)"]
LABEL org.opencontainers.image.title="agogosml-input-reader" \
      org.opencontainers.image.description="agogosml input reader: consumes, validates and forwards events to the app"
ENTRYPOINT ["python", "-m", "agogosml.services.input_reader"]

# The app: scores event batches with an MLflow model (`agogosml serve app`).
FROM runtime AS app
COPY --from=builder-app /opt/venv /opt/venv
ENV AGOGOSML_APP_HOST=0.0.0.0
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AGOGOSML_APP_PORT', '8000') + '/healthz', timeout=4)"]
LABEL org.opencontainers.image.title="agogosml-app" \
      org.opencontainers.image.description="agogosml app: scores event batches with an MLflow model"
ENTRYPOINT ["python", "-m", "agogosml.services.app"]

# The output writer: writes scored events to the sink and answers after the sink confirmed
# (`agogosml serve output_writer`).
FROM runtime AS output-writer
COPY --from=builder-core /opt/venv /opt/venv
ENV AGOGOSML_WRITER_HOST=0.0.0.0
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AGOGOSML_WRITER_PORT', '8001') + '/healthz', timeout=4)"]
LABEL org.opencontainers.image.title="agogosml-output-writer" \
      org.opencontainers.image.description="agogosml output writer: writes scored events to Kafka, Event Hubs or files"
ENTRYPOINT ["python", "-m", "agogosml.services.output_writer"]

# The monitor: stores scored events and labels, watches drift and live performance, acts on
# trigger rules and serves the dashboard (`agogosml serve monitor`).
FROM runtime AS monitor
COPY --from=builder-monitor /opt/venv /opt/venv
ENV AGOGOSML_MONITOR_HOST=0.0.0.0
EXPOSE 8005
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AGOGOSML_MONITOR_PORT', '8005') + '/healthz', timeout=4)"]
LABEL org.opencontainers.image.title="agogosml-monitor" \
      org.opencontainers.image.description="agogosml monitor: event history, drift, live performance, triggers and the dashboard"
ENTRYPOINT ["python", "-m", "agogosml.services.monitor"]

# The Spark job (`agogosml spark run`; agogosml/engines/spark): local mode by default, or the
# driver and executor pods of `spark-submit --master k8s://...` (deploy/spark/entrypoint.sh).
FROM runtime AS spark
COPY --from=builder-spark /opt/venv /opt/venv
COPY --from=jre /opt/java/openjdk /opt/java/openjdk
COPY --chmod=0755 deploy/spark/entrypoint.sh /opt/spark-entrypoint.sh
ENV JAVA_HOME=/opt/java/openjdk \
    PATH=/opt/java/openjdk/bin:$PATH \
    SPARK_HOME=/opt/venv/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/opt/venv/bin/python \
    AGOGOSML_SPARK_JARS_DIR=""
LABEL org.opencontainers.image.title="agogosml-spark" \
      org.opencontainers.image.description="agogosml Spark job: the pipeline's contract, model and outputs as one Structured Streaming query"
ENTRYPOINT ["/opt/spark-entrypoint.sh"]
