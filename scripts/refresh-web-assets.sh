#!/usr/bin/env bash
# Re-fetches the pinned GraphiQL packages from the npm registry and rebuilds the vendored bundle
# in landscape_graphql/static/graphiql/. The built files are committed, so only someone changing
# the pinned versions (web/package.json) needs node and npm; Python users and CI never run this.
#
#   scripts/refresh-web-assets.sh            # npm ci from web/package-lock.json, then build
#   scripts/refresh-web-assets.sh --update   # re-resolve the lockfile from web/package.json first
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$root/web"
out="$root/landscape_graphql/static/graphiql"

command -v npm >/dev/null || { echo "refresh-web-assets: npm is needed (Debian: apt-get install -y npm)" >&2; exit 1; }

cd "$web"
if [[ "${1:-}" == "--update" ]]; then
  npm install --package-lock-only --no-audit --no-fund
fi
# --ignore-scripts: no package gets to run code at install time; esbuild's native binary comes
# from its platform package (@esbuild/linux-x64 and friends), not from its postinstall step.
npm ci --ignore-scripts --no-audit --no-fund
node build.mjs "$out"

# The viewer's layered layout and the tests' accessibility checker are copied, not bundled.
viewer="$root/landscape_graphql/static/viewer"
grep -v '^//# sourceMappingURL=' node_modules/@dagrejs/dagre/dist/dagre.esm.js > "$viewer/vendor/dagre.esm.js"
cat node_modules/@dagrejs/dagre/LICENSE node_modules/@dagrejs/dagre/dist/dagre.esm.js.LEGAL.txt \
  > "$viewer/licenses/@dagrejs__dagre@$(node -p 'require("@dagrejs/dagre/package.json").version').txt"
cp node_modules/axe-core/axe.min.js "$root/tests/web/vendor/axe.min.js"
cp node_modules/axe-core/LICENSE "$root/tests/web/vendor/axe-core.LICENSE.txt"
echo "Update the sha256 lines of $viewer/VERSIONS.txt and tests/web/vendor/VERSIONS.txt:"
sha256sum "$viewer/vendor/dagre.esm.js" "$root/tests/web/vendor/axe.min.js"

# The page must work on an air-gapped site: refuse a bundle that would make the browser fetch
# from elsewhere. tests/web/test_no_external_urls.py runs the thorough version of this check.
if grep -lE 'sourceMappingURL|@import +url\(["'"'"']?https?:|import\(["'"'"']https?:' "$out"/graphiql.js "$out"/graphiql.css; then
  echo "refresh-web-assets: the bundle above references an external URL or a source map" >&2
  exit 1
fi
du -sh "$out"
echo "Now run: .venv/bin/pytest tests/web"
