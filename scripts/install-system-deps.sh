#!/usr/bin/env bash
# Installs from Debian's packages what the test suite needs and PyPI cannot give:
#   - the PostgreSQL server (initdb/pg_ctl/postgres/psql under /usr/lib/postgresql/<ver>/bin),
#     for tests/_pgcluster.py's throwaway clusters;
#   - chromium (and fonts for it to render text with), for the browser tests.
# SQLCipher needs nothing from Debian: the sqlcipher3 wheel from PyPI links SQLCipher and its
# crypto statically.
#
# Idempotent and non-interactive; when everything is already there it does not touch apt at
# all, so it costs a fraction of a second in CI. Needs root (or sudo) only when it installs.
#
# Environment:
#   LANDSCAPE_DEPS_DRY_RUN=1   say what would be installed and simulate it (apt-get -s)
#   LANDSCAPE_DEPS_SKIP_BROWSER=1   do not install chromium (e.g. a server-only machine)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
dry_run=${LANDSCAPE_DEPS_DRY_RUN:-0}
skip_browser=${LANDSCAPE_DEPS_SKIP_BROWSER:-0}

missing=()

# Debian's postgresql package creates and starts a default cluster (port 5432) that nothing here
# uses: the tests make their own. This file switches that off while the package installs, and
# is removed right after, so no later PostgreSQL install on this machine is changed by it (an
# earlier version of this script left it behind; it is deleted here too).
no_cluster_conf=/etc/postgresql-common/createcluster.d/50-landscape-graphql.conf

root_command() {
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
    else
        return 1
    fi
}

if [ -e "$no_cluster_conf" ] && [ "$dry_run" != 1 ]; then
    if root_command; then
        "${as_root[@]}" rm -f "$no_cluster_conf"
        "${as_root[@]}" rmdir --ignore-fail-on-non-empty "$(dirname "$no_cluster_conf")" 2>/dev/null || true
        echo "install-system-deps: removed $no_cluster_conf left by an earlier run"
    else
        echo "install-system-deps: $no_cluster_conf (left by an earlier run) needs root to remove" >&2
    fi
fi

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

pg_server_present() {
    local bindir
    for bindir in /usr/lib/postgresql/*/bin; do
        if [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] && [ -x "$bindir/postgres" ] \
            && [ -x "$bindir/psql" ]; then
            return 0
        fi
    done
    return 1
}

# The server binaries and the `postgres` OS user that _pgcluster.py runs the server as when
# the tests run as root; both come from Debian's postgresql package.
if ! pg_server_present || ! id -u postgres >/dev/null 2>&1; then
    missing+=(postgresql)
fi
# runuser is how _pgcluster.py drops root; util-linux is essential on Debian, but a slimmed
# image may lack it.
if ! command -v runuser >/dev/null 2>&1; then
    missing+=(util-linux)
fi
if [ "$skip_browser" != 1 ]; then
    if ! command -v chromium >/dev/null 2>&1; then
        missing+=(chromium)
    fi
    # Without any font, headless chromium renders text as empty boxes in screenshots.
    for font in fonts-dejavu-core fonts-liberation; do
        pkg_installed "$font" || missing+=("$font")
    done
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-system-deps: everything is already installed"
    exit 0
fi

echo "install-system-deps: installing ${missing[*]}"

if ! root_command; then
    echo "install-system-deps: need root (or sudo) to install ${missing[*]}" >&2
    exit 1
fi

if [ "$dry_run" = 1 ]; then
    "${as_root[@]}" apt-get install -s -q --no-install-recommends "${missing[@]}"
    exit 0
fi

if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    conf_dir=$(dirname "$no_cluster_conf")
    made_dir=0
    [ -d "$conf_dir" ] || made_dir=1
    remove_no_cluster_conf() {
        "${as_root[@]}" rm -f "$no_cluster_conf"
        if [ "$made_dir" = 1 ]; then
            "${as_root[@]}" rmdir --ignore-fail-on-non-empty "$conf_dir" 2>/dev/null || true
        fi
    }
    # Removed however the install ends (success, failure, interrupt).
    trap remove_no_cluster_conf EXIT
    "${as_root[@]}" mkdir -p "$conf_dir"
    echo "create_main_cluster = false" | "${as_root[@]}" tee "$no_cluster_conf" >/dev/null
fi

# A fresh machine has no package lists; retry once because a mirror sync can make the
# first update fail with a hash-sum mismatch.
"${as_root[@]}" apt-get update -q || { sleep 5; "${as_root[@]}" apt-get update -q; }
"${as_root[@]}" apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"

if ! pg_server_present; then
    echo "install-system-deps: postgresql installed but no server binaries under /usr/lib/postgresql/*/bin" >&2
    exit 1
fi
echo "install-system-deps: done"
