# syntax=docker/dockerfile:1.7
# One image for every Rhime component and for the operator.
#   components: rhime serve <component>          (the operator sets this command)
#   operator:   kopf run --standalone --all-namespaces -m rhime_operator.handlers
#
#   docker build -t rhime .                  production: code owned by root, runs as uid 10001
#   docker build --target dev -t rhime:dev . Tilt: sources writable by uid 10001 for live update,
#                                            plus moto for the in-cluster S3 stand-in
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.8 AS uv

# ---- build: the locked virtual environment, the project, and the generated gRPC modules ----
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first: this layer changes only with the lock.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    uv sync --frozen --no-dev --no-install-project
COPY pyproject.toml uv.lock README.md ./
COPY services ./services
COPY operator ./operator
# The project is installed editable (it points at /app/services and /app/operator), so Tilt can
# sync sources in place. The gRPC modules are generated here: grpcio-tools is not in the image.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
 && uv run --frozen --no-dev --no-sync --with grpcio-tools==1.85.1 \
        python -m rhime.graphview.codegen \
 && /app/.venv/bin/python -m compileall -q services operator

# ---- runtime: slim, non-root, nothing but the venv and the sources ----
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 rhime \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin rhime
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001:10001
EXPOSE 8080
CMD ["rhime", "--help"]

# ---- dev: the same, with sources writable by the app user (Tilt live update) and the
#      `standins` dependency group (moto's S3 server) for spec.development.standIns; the fake
#      Spotify is part of the project already ----
FROM runtime AS dev
USER root
RUN --mount=from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv \
    UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    uv sync --frozen --no-dev --group standins \
 && chown -R 10001:10001 /app/services /app/operator
USER 10001:10001

# ---- production (the default target) ----
FROM runtime AS production
