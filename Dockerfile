# syntax=docker/dockerfile:1
#
# One image per service:
#   docker build --build-arg SERVICE=registry   --build-arg PORT=8001 -t subsidy-registry .
#   docker build --build-arg SERVICE=calculator --build-arg PORT=8002 -t subsidy-calculator .
#   docker build --build-arg SERVICE=gateway    --build-arg PORT=8000 -t subsidy-gateway .

FROM python:3.11-slim AS builder

RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /app

ARG SERVICE
ARG PORT
RUN case "${SERVICE}" in registry|calculator|gateway) ;; \
        *) echo "--build-arg SERVICE=registry|calculator|gateway is required" >&2; exit 1 ;; \
    esac \
    && test -n "${PORT}" || { echo "--build-arg PORT is required" >&2; exit 1; }

# Third-party dependencies first: this layer is rebuilt only when the lock or a pyproject changes.
COPY pyproject.toml uv.lock ./
COPY packages/common/pyproject.toml packages/common/
COPY services/registry/pyproject.toml services/registry/
COPY services/calculator/pyproject.toml services/calculator/
COPY services/gateway/pyproject.toml services/gateway/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "subsidy-${SERVICE}"

# The workspace members stay editable installs: the services find migrations/ and policies/
# relative to the repository root, which is /app only while the code runs from there.
COPY packages/ packages/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "subsidy-${SERVICE}"


FROM python:3.11-slim AS runtime

RUN groupadd --system --gid 10001 subsidy \
    && useradd --system --uid 10001 --gid subsidy --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin subsidy

ARG SERVICE
ARG PORT
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SERVICE=${SERVICE} \
    PORT=${PORT}
WORKDIR /app

COPY --from=builder /app/.venv .venv
COPY packages/ packages/
COPY services/ services/
COPY migrations/ migrations/
COPY policies/ policies/
# The root filesystem is read-only at run time, so compile the editable sources now.
RUN python -m compileall -q packages services migrations

USER 10001:10001
EXPOSE ${PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PORT'], timeout=3)"
CMD ["sh", "-c", "exec python -m subsidy_common.serving ${SERVICE}.main:create_app --host 0.0.0.0 --port ${PORT} --proxy-headers"]
