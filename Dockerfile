# syntax=docker/dockerfile:1
#
# One image with the three controllers; each Deployment in config/ picks its binary with
# `command:`. Build from the repository root:
#
#   docker build -t ghcr.io/weir-dev/weir:v0.1.0 .

# --- build -----------------------------------------------------------------------------------
# Rust 1.95 is the toolchain the workspace is built and tested with (its declared minimum,
# rust-version, is 1.89). aws-lc (rustls' crypto provider) needs a C compiler, cmake and perl;
# Go is only used by the tests' control plane and is not needed here.
FROM rust:1.95-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake clang perl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Every workspace member must be present for cargo to load the workspace.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY api api
COPY controllers controllers
COPY crates crates
COPY tests tests
COPY xtask xtask
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release \
        -p weir-source-controller -p weir-render-controller -p weir-apply-controller \
    && mkdir -p /out \
    && cp target/release/weir-source-controller \
          target/release/weir-render-controller \
          target/release/weir-apply-controller /out/

# --- run -------------------------------------------------------------------------------------
# Not distroless: Git over ssh runs the `ssh` client through `sh` (gix's core.sshCommand), so
# the image needs openssh-client and a shell; ca-certificates for https remotes (rustls uses the
# system roots). `git` itself is not needed (gix speaks http and ssh; only file:// URLs would
# spawn git-upload-pack).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin nonroot
COPY --from=builder /out/ /usr/local/bin/
# ssh refuses to run for a uid without a passwd entry, hence the user above.
USER 65532:65532
ENV HOME=/tmp
