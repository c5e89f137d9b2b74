# The provider image, ghcr.io/blendrchain/blendr-provider: `blendr provider run` on a GPU node, with CuPy
# (the gpu extra, cupy-cuda12x), Ray, and the sandboxes renters' jobs run in (docs/sandbox.md).
# Built from the repository root (.dockerignore keeps the context to what install.sh installs):
#   docker build -f deploy/docker/provider.Dockerfile --build-arg VERSION=0.1.0 \
#     -t ghcr.io/blendrchain/blendr-provider:0.1.0 .
# See deploy/docker/README.md.

# The base, pinned to an exact tag: CUDA 12.9's runtime libraries (NVRTC and cuBLAS among them, which CuPy
# loads) on Ubuntu 24.04, whose python3.12 runs the agent. The NVIDIA container toolkit adds the host's driver.
# A digest pins it for good, e.g. with the one
# `docker buildx imagetools inspect nvidia/cuda:12.9.1-runtime-ubuntu24.04` prints:
#   --build-arg BASE_IMAGE=nvidia/cuda:12.9.1-runtime-ubuntu24.04@sha256:<digest>
# (not written here: it cannot be resolved where this file is tested).
ARG BASE_IMAGE=nvidia/cuda:12.9.1-runtime-ubuntu24.04

FROM ${BASE_IMAGE} AS builder
# Apt versions are not pinned (here and below): they come from the pinned base's Ubuntu release and its
# security updates, and an exact pin breaks the build at the next update (the archive's index lists only
# the newest). BASE_IMAGE's digest is what makes a build repeatable.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3.12 python3.12-venv \
    && rm -rf /var/lib/apt/lists/*
# Every dependency ships wheels for CPython 3.12 on amd64 and arm64, so the builder needs no compiler; the
# install and its checks are deploy/docker/install.sh, the script tests/deploy/test_images.py runs.
COPY . /src
RUN PYTHON=python3.12 bash /src/deploy/docker/install.sh --gpu --no-cache /opt/blendr /src

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="blendr-provider" \
      org.opencontainers.image.description="BlendrChain provider agent: rents out this node's GPUs (CUDA 12, CuPy, Ray, sandboxed jobs)" \
      org.opencontainers.image.source="https://github.com/blendrchain/blendrchain" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# python3.12 runs the agent (python3.12-venv: jobs that declare dependencies get a venv of their own).
# The job sandboxes, as scripts/sandbox-tools.sh checks for them: bubblewrap (bwrap), slirp4netns
# (job_network = "outbound"), iproute2 (ip) and util-linux (setpriv, nsenter). gVisor's runsc is left out: its
# sandbox needs a root agent (provider/sandbox.py refuses otherwise) and this image runs as uid 10001, Ubuntu's
# runsc has no GPU support (nvproxy), and on Kubernetes gVisor belongs to the node (a RuntimeClass).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       python3.12 python3.12-venv ca-certificates bubblewrap slirp4netns iproute2 util-linux \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid (10001) so Kubernetes' runAsNonRoot can check it and volumes can be owned by it.
RUN groupadd --gid 10001 blendr \
    && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /home/blendr --create-home \
       --shell /usr/sbin/nologin blendr \
    && install -d -o blendr -g blendr -m 0750 /var/lib/blendr

# Only the virtual environment comes over: no pip cache, no source tree, no compiler. Owned by root: neither
# the agent nor a job can rewrite it. It keeps pip: jobs' `python -m pip` installs come from it.
COPY --from=builder /opt/blendr /opt/blendr
ENV PATH="/opt/blendr/bin:${PATH}" \
    BLENDR_HOME=/var/lib/blendr \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# The copied environment runs on this stage's Python, and can make jobs' environments.
RUN blendr --help > /dev/null \
    && python -m venv --without-pip /tmp/job-env && rm -rf /tmp/job-env

USER 10001:10001
WORKDIR /var/lib/blendr
# Health 7490, metrics 9090 (the agent dials its queens; it listens on nothing else).
EXPOSE 7490 9090
ENTRYPOINT ["blendr"]
CMD ["--help"]
