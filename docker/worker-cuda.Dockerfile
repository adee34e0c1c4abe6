# syntax=docker/dockerfile:1.7
# The CUDA factor worker: `tacit worker --factor F --device cuda:0`. The base image
# already carries torch 2.13.0 built for CUDA; the venv sees it through the system
# site-packages, so pip finds the project's torch==2.13.0 pin met and installs no
# second copy (the build fails if one appears).
# Build from the repository root: docker build -f docker/worker-cuda.Dockerfile -t tacit/worker-cuda .

FROM pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -c "import sys, torch; assert sys.version_info >= (3, 11), sys.version; assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__" \
 && python -m venv --system-site-packages /opt/venv
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip install --no-cache-dir "$(ls /wheels/tacit-*.whl)[oip]" \
 && test -z "$(find /opt/venv -path '*site-packages/torch' -type d)"

FROM pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/tacit \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    TACIT_ENV=production \
    TACIT_POOL__DEVICE=cuda:0 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN groupadd --system --gid 10001 tacit \
 && useradd --system --uid 10001 --gid tacit --home-dir /home/tacit --create-home tacit
COPY --from=build /opt/venv /opt/venv
WORKDIR /home/tacit
USER 10001:10001
EXPOSE 9100
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=4)"]
ENTRYPOINT ["tacit"]
CMD ["worker", "--factor", "face", "--device", "cuda:0"]
