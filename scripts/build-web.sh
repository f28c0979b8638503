#!/usr/bin/env bash
# Builds the web app into web/dist when its sources (or the installed packages) changed since the last build.
# Runs from scripts/setup.sh, so `npm start` and `npm test` always serve a current app; `npm run build:web` forces it.
set -euo pipefail
cd "$(dirname "$0")/.."

source_hash() {
  { cat package-lock.json web/index.html web/vite.config.ts web/tsconfig.json
    find web/src web/public -type f -print0 | LC_ALL=C sort -z | xargs -0 cat; } | sha256sum | cut -d' ' -f1
}

hash=$(source_hash)
stamp=web/dist/.source-hash
if [[ ${1:-} != --force && -f $stamp && $(cat "$stamp") == "$hash" ]]; then
  exit 0
fi
echo "building the web app (web/dist) ..." >&2
node node_modules/vite/bin/vite.js build --config web/vite.config.ts --logLevel warn
echo "$hash" > "$stamp"
