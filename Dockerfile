# syntax=docker/dockerfile:1
#
# anndata-exportd: build on Debian 12 with the repository's own build script,
# run in a slim image holding only the shared libraries the binary links.
#
#   docker build -t anndata-exportd .
#   docker run -d -p 127.0.0.1:8080:8080 --stop-timeout 45 \
#       -v anndata-spool:/var/lib/anndata-exportd/spool anndata-exportd
#
# Configuration: ANNDATA_EXPORTD_<KEY> environment variables (-e), or a
# config file mounted over /etc/anndata-exportd/anndata-exportd.conf; every
# key is documented in config/anndata-exportd.conf. See README.md, Deploy.

FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
# The "build" packages of scripts/setup.sh (tests/integration/deploy checks
# that they stay in step); the test-only ones are left out.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        gcc libc6-dev pkg-config meson ninja-build \
        libuv1-dev libmicrohttpd-dev libjansson-dev libhdf5-dev libdeflate-dev \
        liblzf-dev zlib1g-dev libzip-dev nettle-dev libsystemd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The same build the README and scripts/ use, in release mode; libhdf5 is
# linked statically (libhdf5-dev ships the archive), so the runtime needs
# neither it nor the curl/krb5/ldap stack Debian's shared one pulls in.
RUN ./scripts/build.sh build --buildtype=release -Dstatic_hdf5=enabled \
 && ./build/anndata-exportd --version

FROM debian:bookworm-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# Exactly the libraries `anndata-exportd` is linked against or opens when
# first needed (libmicrohttpd, libzip, libsystemd: -Dlazy_libs); libc6 is in
# the base image; no compiler, no -dev packages, no curl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libuv1 libmicrohttpd12 libjansson4 libdeflate0 liblzf1 \
        libzip4 libnettle8 libsystemd0 zlib1g \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid so that volume ownership and Kubernetes' runAsNonRoot
# work without a name lookup.
RUN groupadd --system --gid 10001 anndata \
 && useradd --system --uid 10001 --gid anndata --no-create-home \
        --home-dir /var/lib/anndata-exportd --shell /usr/sbin/nologin anndata \
 && install -d -o anndata -g anndata -m 0750 /var/lib/anndata-exportd \
        /var/lib/anndata-exportd/spool /var/lib/anndata-exportd/data
# The configured data directory is never seeded by the daemon; the image
# ships the bundled example conversation in it instead, so a new volume
# starts out serving `polis-example` (Docker copies it into an empty named
# volume). Before VOLUME: later changes to a volume path are discarded.
COPY data/polis-example/votes.csv data/polis-example/comments.csv \
     /var/lib/anndata-exportd/data/polis-example/
RUN chown -R anndata:anndata /var/lib/anndata-exportd/data

COPY --from=build /src/build/anndata-exportd /usr/local/bin/anndata-exportd
# The helper that reads every uploaded h5ad in a child process: the daemon
# looks for it in the install's libexecdir (meson's default prefix
# /usr/local) and does not start without it.
COPY --from=build /src/build/src/h5r/adx-h5check /usr/local/libexec/adx-h5check
COPY config/anndata-exportd.conf /etc/anndata-exportd/anndata-exportd.conf

# Inside the container the daemon must listen on every interface for -p to
# reach it; publish the port on the host's loopback when a proxy fronts it.
# The environment wins over the config file, so a mounted file cannot move
# these three: change them with -e.
ENV ANNDATA_EXPORTD_LISTEN=0.0.0.0:8080 \
    ANNDATA_EXPORTD_SPOOL_DIR=/var/lib/anndata-exportd/spool \
    ANNDATA_EXPORTD_DATA_DIR=/var/lib/anndata-exportd/data

# Accepted jobs and results live in the spool: keep it across containers.
VOLUME ["/var/lib/anndata-exportd/spool", "/var/lib/anndata-exportd/data"]
USER 10001:10001
WORKDIR /var/lib/anndata-exportd
EXPOSE 8080
# SIGTERM drains: running jobs get shutdown_grace (30 s) to finish, so run
# with --stop-timeout 45 (docker's default of 10 s would cut exports short).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["anndata-exportd", "healthcheck"]
ENTRYPOINT ["anndata-exportd"]
CMD ["serve", "--config", "/etc/anndata-exportd/anndata-exportd.conf"]
