# syntax=docker/dockerfile:1
# video-script-serve: one image for `docker run` (CPU profile) and for every Ray node of the
# KubeRay RayService in deploy/kuberay/.
#
#   docker build -t video-script-serve:cpu .                                # default: CPU torch
#   docker build --build-arg VARIANT=cuda -t video-script-serve:cuda .      # CUDA torch (GPU nodes)
#
# Both variants install the project with every dependency pyproject.toml names (bitsandbytes
# included: its int8/nf4 kernels run on CUDA in the cuda variant, CPU support from 0.46.1).
# torch goes in first and pinned, as the Makefile does: a bare `torch` requirement would pull the
# CUDA wheels into the CPU image. The NVIDIA driver comes from the host (NVIDIA container toolkit
# or the GPU operator on Kubernetes), the CUDA runtime libraries with the torch wheel.

ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

# cpu or cuda; CUDA_TAG picks the wheel index of the cuda variant.
ARG VARIANT=cpu
ARG CUDA_TAG=cu128
# The same pin as the Makefile's TORCH_VERSION.
ARG TORCH_VERSION=2.13.0
# The Ray of the RayService's rayVersion (deploy/kuberay/rayservice.yaml); pyproject allows >=2.50,<3.
ARG RAY_VERSION=2.60.0

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    RAY_USAGE_STATS_ENABLED=0

# wget: KubeRay's readiness and liveness probes call it inside Ray pods.
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 ray

RUN case "$VARIANT" in \
        cpu) index="https://download.pytorch.org/whl/cpu" ;; \
        cuda) index="https://download.pytorch.org/whl/${CUDA_TAG}" ;; \
        *) echo "VARIANT must be cpu or cuda, not '$VARIANT'" >&2; exit 1 ;; \
    esac \
    && pip install --index-url "$index" "torch==${TORCH_VERSION}"

WORKDIR /app
# What the package needs to build (pyproject.toml's packages and package data), then the project
# with its dependencies; Ray pinned to the RayService's version.
COPY pyproject.toml ./
COPY deployments/ deployments/
COPY serve_app/ serve_app/
COPY loadtests/ loadtests/
RUN pip install "ray[serve]==${RAY_VERSION}" . \
    && python -c "import torch, transformers, bitsandbytes, ray, serve_app.app; print('torch', torch.__version__, 'ray', ray.__version__)"

# The Serve configs and the scripts an operator runs inside the image (download_model.py,
# verify_setup.py, make_tiny_model.py).
COPY serve_config.yaml serve_config.cpu.yaml ./
COPY scripts/ scripts/

# models/ and data/ are volumes: the weights (read-only) and the task store's SQLite file.
RUN mkdir -p /app/models /app/data /var/lib/video-script-serve \
    && chown -R ray:ray /app/data /var/lib/video-script-serve
USER ray

EXPOSE 8000 8265 6379 10001 8080
# `docker run --network host video-script-serve:cpu`: the CPU profile on the host's 127.0.0.1:8000
# (the profile listens on loopback, so it needs no API keys). KubeRay replaces this command with
# `ray start` and deploys serve_config.yaml's application from the RayService.
CMD ["serve", "run", "serve_config.cpu.yaml"]
