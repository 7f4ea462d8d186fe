# The slipway image CI jobs run in (examples/gitlab-ci.yml builds it with
# Kaniko): built with the Rust toolchain, run on a slim Debian with CA
# certificates only, as a non-root user. GitLab runs job scripts through the
# image's shell, so there is no ENTRYPOINT.
#
#   docker build --build-arg SLIPWAY_GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t slipway .

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
ARG SLIPWAY_GIT_COMMIT=unknown
ENV SLIPWAY_GIT_COMMIT=${SLIPWAY_GIT_COMMIT}
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY benches benches
RUN cargo build --release --locked --bin slipway

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin slipway
COPY --from=build /src/target/release/slipway /usr/local/bin/slipway
USER 10001
WORKDIR /home/slipway
CMD ["slipway", "--help"]
