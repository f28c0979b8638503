#!/usr/bin/env bash
# Installs what Agentyard needs on a Debian/Ubuntu host, skipping what is already there:
# the sandbox tools (bubblewrap, socat, util-linux), PostgreSQL for the store tests, node_modules and the web app.
# Runs before `npm start` and `npm test`; fast when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(bubblewrap socat util-linux procps postgresql)
# `--test` (npm test) adds what only the tests need: Debian's Chromium for the browser tests.
if [[ ${1:-} == --test ]]; then packages+=(chromium); fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "agentyard needs: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing ${missing[*]} ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# node_modules must match package-lock.json; `npm ci` is skipped when the lock is unchanged since the last install.
stamp=node_modules/.agentyard-lock
if [[ ! -f $stamp ]] || ! cmp -s package-lock.json "$stamp"; then
  echo "installing node modules (npm ci) ..." >&2
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi

# The web app: rebuilt only when its sources changed.
bash scripts/build-web.sh
