# syntax=docker/dockerfile:1.7
# The CPU worker roles: factor scoring pools (`tacit worker --factor F`), the webhook
# pool (`tacit worker --webhooks`) and the outbox relay (`tacit relay`). torch comes
# from the CPU wheel index, pinned to the project's torch==2.13.0.
# Build from the repository root: docker build -f docker/worker.Dockerfile -t tacit/worker .

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv \
 && pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip install --no-cache-dir "$(ls /wheels/tacit-*.whl)[oip]" \
 && pip check

FROM python:3.11.14-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/tacit \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    TACIT_ENV=production \
    TACIT_POOL__DEVICE=cpu
RUN groupadd --system --gid 10001 tacit \
 && useradd --system --uid 10001 --gid tacit --home-dir /home/tacit --create-home tacit
COPY --from=build /opt/venv /opt/venv
WORKDIR /home/tacit
USER 10001:10001
# Metrics and /healthz of every worker role.
EXPOSE 9100
# Celery's warm shutdown: SIGTERM stops taking messages and finishes in-flight batches.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=4)"]
ENTRYPOINT ["tacit"]
CMD ["worker", "--factor", "keystroke", "--device", "cpu"]
