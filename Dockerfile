# SPDX-License-Identifier: MIT
# Dockerfile - vramd on a CUDA base image, for RunPod-style GPU hosts.
#
#   docker build -t vram .
#   docker run --gpus all --pid=host -p 7860:7860 -v vram-state:/var/lib/vram vram
#
# vramd is the entry point: it queues jobs, admits each while its memory fits,
# and runs it under `vram run`, which preloads the shim (libvram_shim.so) so
# that the job is held to its lease.  --pid=host lets NVML's process ids (host
# ids) be matched with the container's processes; without it vram falls back
# to counting each job's memory per lease and says so once.  The dashboard
# listens on 0.0.0.0:7860 inside the container (publish it only where you
# mean to: changes need the token vramd writes to /var/lib/vram/token).
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-base-ubuntu22.04

FROM ${CUDA_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc make libc6-dev pkg-config \
       libsqlite3-dev libinih-dev libmicrohttpd-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" lib cli docs \
    && make install PREFIX=/usr/local DESTDIR=/out

FROM ${CUDA_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-0 libinih1 libmicrohttpd12 \
       python3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/local/ /usr/local/
RUN ldconfig && install -d -m 700 /var/lib/vram /run/vram
ENV VRAM_SOCKET=/run/vram/vramd.sock \
    VRAM_DB=/var/lib/vram/queue.db \
    VRAM_TOKEN_FILE=/var/lib/vram/token \
    VRAM_HTTP=0.0.0.0:7860 \
    VRAM_HISTORY=/var/lib/vram/history.db
VOLUME ["/var/lib/vram"]
EXPOSE 7860
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/vramd"]
