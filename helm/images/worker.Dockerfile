# The gpu-worker image the chart runs (ghcr.io/locus/gpu-worker), built with the `cuda`
# feature for `devices: cuda`.
# UNTESTED: no container engine or GPU was available where this was written.
#   docker build -f helm/images/worker.Dockerfile --build-arg CUDA_COMPUTE_CAP=90 \
#     -t ghcr.io/locus/gpu-worker:0.1.0 .
# CUDA_COMPUTE_CAP is the GPUs' compute capability without the dot (80 = A100, 90 = H100).
FROM nvidia/cuda:12.4.1-devel-ubuntu22.04 AS build
ARG CUDA_COMPUTE_CAP=80
ENV CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP} PATH=/root/.cargo/bin:${PATH}
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates build-essential pkg-config \
    && curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95.0
WORKDIR /src
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY faas-provider faas-provider
COPY gpu-worker gpu-worker
COPY watchdog watchdog
COPY e2e e2e
RUN cargo build --release -p gpu-worker --features cuda

FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/gpu-worker /usr/local/bin/gpu-worker
# The chart runs it as 10001:10001 with a read-only root file system; the model cache
# and /tmp are volumes.
USER 10001:10001
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/gpu-worker"]
CMD ["serve"]
