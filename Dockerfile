# syntax=docker/dockerfile:1
# The cairn image: cairn-node and the cairn CLI on Debian, run as uid 10001 under tini.
#   docker build -t ghcr.io/cairn-mirror/cairn:0.1.0 .
# The Helm chart's default image is ghcr.io/cairn-mirror/cairn:<appVersion>, built from this file.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# protox compiles the protobufs in Rust: no protoc needed. The cache mounts keep the registry
# and target directory between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cairn-node -p cairn-cli \
    && install -D -m 0755 target/release/cairn-node target/release/cairn -t /out/

FROM debian:bookworm-slim
# git and openssh-client: `direct` fetches modules from git over HTTPS and ssh.
# tini: PID 1 that reaps the git/ssh processes orphaned under it and forwards SIGTERM.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git openssh-client tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 cairn \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin cairn \
    && install -d -o 10001 -g 10001 /data
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /data
ENV HOME=/tmp
VOLUME /data
# 8080: GOPROXY HTTP(S), /healthz, /readyz, /metrics. 9090: the cluster port (gRPC, cairn CLI).
EXPOSE 8080 9090
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["cairn-node", "--data-dir", "/data", "--listen", "0.0.0.0:8080"]
