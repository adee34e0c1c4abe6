# syntax=docker/dockerfile:1.7
# The API role: FastAPI under uvicorn. It holds no HPKE private key and never imports
# torch, but the package pins torch==2.13.0, so the CPU wheel goes in first: pip then
# finds the pin met and never pulls the multi-gigabyte CUDA build.
# Build from the repository root: docker build -f docker/api.Dockerfile -t tacit/api .

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv \
 && pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY . .
# Build the project's wheel, then install it (and its locked-by-range deps) into the venv.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip install --no-cache-dir /wheels/tacit-*.whl \
 && pip check

FROM python:3.11.14-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/tacit \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    TACIT_ENV=production
RUN groupadd --system --gid 10001 tacit \
 && useradd --system --uid 10001 --gid tacit --home-dir /home/tacit --create-home tacit
COPY --from=build /opt/venv /opt/venv
WORKDIR /home/tacit
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["tacit"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
