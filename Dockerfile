# syntax=docker/dockerfile:1
# One image with every tracehop binary; docker-compose.yml picks one per container with `command`.
#
#   docker build -t tracehop:local .
#
# The builder's Rust must be at least the highest `rust-version` in Cargo.lock
# (observability/tests/check_stacks.py checks it).

FROM rust:1.90-bookworm AS builder
# log-service compiles its .proto files with protox (pure Rust): no protoc needed.
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        --bin order-gateway --bin payment-service --bin email-service \
        --bin log-service --bin tracehop \
 && mkdir -p /out \
 && cp target/release/order-gateway target/release/payment-service target/release/email-service \
       target/release/log-service target/release/tracehop /out/

FROM debian:bookworm-slim AS runtime
# curl: the compose healthchecks call /ready; ca-certificates: TLS to a remote collector or broker.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tracehop \
 && useradd --system --uid 10001 --gid tracehop --home-dir /app --shell /usr/sbin/nologin tracehop \
 && mkdir -p /app /var/log/tracehop /var/lib/tracehop \
 && chown tracehop:tracehop /app /var/log/tracehop /var/lib/tracehop
COPY --from=builder /out/ /usr/local/bin/
WORKDIR /app
# Named volumes mounted on these folders start with this ownership, so the non-root user can write.
VOLUME ["/var/log/tracehop", "/var/lib/tracehop"]
USER tracehop:tracehop
ENV RUST_LOG=info \
    LOG_DIR=/var/log/tracehop
EXPOSE 3000 3001 3002 4317 4318 5002 50051
CMD ["tracehop", "--help"]
