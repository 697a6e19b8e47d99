# landscape-graphql: the read-only GraphQL lineage API over an ELSPETH Landscape.
#
#   docker build -t landscape-graphql .
#   docker run -d -p 8000:8000 \
#     -v /srv/elspeth/runs:/data:ro \
#     -v /srv/elspeth/payloads:/payloads:ro \
#     -v /etc/landscape/tokens.json:/run/secrets/landscape-tokens.json:ro \
#     landscape-graphql
#
# Mount the FOLDER holding the database, not the file alone: an ELSPETH database is in WAL mode
# and SQLite needs the -wal/-shm files beside it. README.md ("Docker") has the details, OIDC
# instead of a tokens file, PostgreSQL and SQLCipher.
#
# PYTHON_IMAGE may be pinned by digest: --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# Dependencies first, in their own layer: editing the sources does not reinstall them.
# docker/requirements.lock is requirements.lock less the dev tools (same pins and hashes;
# docker/lock.sh regenerates it), which keeps mypy, Playwright, ruff and pytest (~250 MB) out.
# It holds the [all] extra (PostgreSQL, OIDC, SQLCipher) and [otel]: the image is landscape-graphql[all,otel].
COPY docker/build-venv.sh docker/requirements.lock docker/requirements-build.lock docker/
RUN sh docker/build-venv.sh deps /opt/landscape-graphql
COPY pyproject.toml README.md ./
COPY landscape_graphql/ landscape_graphql/
RUN sh docker/build-venv.sh app /opt/landscape-graphql /src

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="landscape-graphql" \
      org.opencontainers.image.description="Read-only GraphQL lineage API over ELSPETH's audit database" \
      org.opencontainers.image.licenses="MIT"
# A fixed uid/gid so that host files (the tokens file, a SQLCipher key file) can be granted to
# it, and so that Kubernetes' runAsNonRoot can verify the numeric USER below. The base image's
# pip and setuptools go: nothing installs at run time, and they are what scanners flag.
RUN groupadd --system --gid 10001 landscape \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin landscape \
 && python -m pip uninstall --yes --quiet pip setuptools wheel
# Same path as in the builder: a venv's scripts name their interpreter by absolute path.
COPY --from=builder /opt/landscape-graphql /opt/landscape-graphql
ENV PATH=/opt/landscape-graphql/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8000
# uvicorn finishes in-flight requests on SIGTERM (up to 30 s); `docker stop -t 35` lets it.
STOPSIGNAL SIGTERM
# /livez: the process answers. No curl in the slim image, hence Python's urllib; no proxy,
# because an HTTP(S)_PROXY set for the JWKS fetch must not capture a loopback probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8000/livez', timeout=4)"]
# The listening address is the container's business; everything else can be replaced by
# `docker run IMAGE --db ... [--oidc-issuer ...]`. 0.0.0.0 without authentication is refused
# by the CLI, hence the tokens file by default.
ENTRYPOINT ["landscape-graphql", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--db", "/data/landscape.db", "--payloads", "/payloads", "--auth-tokens", "/run/secrets/landscape-tokens.json"]
