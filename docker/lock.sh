#!/bin/sh
# Regenerates docker/requirements.lock (the runtime closure of pyproject.toml with the `all`
# extra, so the image reads PostgreSQL and SQLCipher and verifies OIDC, and `otel`, so it can
# trace; no dev extra)
# and docker/requirements-build.lock (pyproject's build-system requirements) with the same
# versions and hashes as requirements.lock. Run it after `./dev lock`;
# tests/test_docker.py fails when the three files disagree.
#
# Each output starts as a copy of requirements.lock because `uv pip compile -o FILE` keeps the
# pins already in FILE: the subsets then cannot drift to newer releases than the main lock.
set -eu
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
compile="$uv pip compile --quiet --generate-hashes --python-version 3.11 --universal --no-header"

cp requirements.lock docker/requirements.lock
$compile pyproject.toml --extra all --extra otel -o docker/requirements.lock

cp requirements.lock docker/requirements-build.lock
.venv/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
  | $compile - -o docker/requirements-build.lock
