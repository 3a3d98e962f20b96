# The faas-provider image the chart runs (ghcr.io/locus/faas-provider).
# UNTESTED: no container engine was available where this was written.
#   docker build -f helm/images/provider.Dockerfile -t ghcr.io/locus/faas-provider:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The workspace's members only (never target/ or targets/).
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY faas-provider faas-provider
COPY gpu-worker gpu-worker
COPY watchdog watchdog
COPY e2e e2e
RUN cargo build --release -p faas-provider

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/faas-provider /usr/local/bin/faas-provider
# The chart runs it as 10001:10001 with a read-only root file system.
USER 10001:10001
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/faas-provider"]
CMD ["serve"]
