#!/bin/sh
# Builds the image's virtualenv. The Dockerfile's builder stage runs it, and so does
# tests/test_docker.py, so the venv the tests serve from is made exactly as the image's is.
#
#   docker/build-venv.sh deps VENV        new venv with the runtime dependencies, from
#                                         docker/requirements.lock (pins + hashes, wheels only)
#   docker/build-venv.sh app VENV [SRC]   build this project (SRC, default .) into a wheel with
#                                         the hash-pinned setuptools of docker/requirements-build.lock,
#                                         install it without dependencies, `pip check`, then
#                                         remove pip and setuptools from the venv
#
# PYTHON picks the interpreter (default python3). Wheels only: the runtime image has no
# compiler, and every locked dependency ships manylinux wheels for x86_64 and aarch64.
set -eu

step=${1:?usage: build-venv.sh deps|app VENV [SRC]}
venv=${2:?usage: build-venv.sh deps|app VENV [SRC]}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}

case "$step" in
  deps)
    "$python" -m venv "$venv"
    # Without --no-deps: pip then refuses any dependency the lock does not pin with a hash,
    # so an incomplete lock fails the build instead of pulling an unpinned package.
    "$venv/bin/pip" install --require-hashes --only-binary=:all: -r "$here/requirements.lock"
    ;;
  app)
    src=${3:-.}
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # setuptools lives in a throwaway venv: the runtime venv gets the wheel, not the build tool.
    "$python" -m venv "$work/tools"
    "$work/tools/bin/pip" install --require-hashes --only-binary=:all: -r "$here/requirements-build.lock"
    "$work/tools/bin/pip" wheel --no-deps --no-build-isolation --wheel-dir "$work/dist" "$src"
    "$venv/bin/pip" install --no-deps --no-index "$work"/dist/*.whl
    "$venv/bin/pip" check
    # Nothing installs at run time; the venv's own pip and (old) setuptools would only be
    # something for an image scanner to flag and an intruder to use.
    "$venv/bin/python" -m pip uninstall --yes --quiet pip setuptools
    ;;
  *)
    echo "usage: build-venv.sh deps|app VENV [SRC]" >&2
    exit 2
    ;;
esac
