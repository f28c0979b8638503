#!/usr/bin/env bash
# The cgroup v2 lane: runs the local sandbox backend's cgroup tests on a cgroup v2 kernel, whatever the host has.
# A User-mode Linux kernel (Debian's user-mode-linux, an ordinary process: no KVM) boots a debootstrapped bookworm
# root, cached in /var/cache/agentyard/uml-root, with only cgroup v2 mounted. The guest reads this checkout and its
# node_modules through hostfs and runs the selected tests with AGENTYARD_TEST_CGROUP=v2 (a missing cgroup is a
# failure, not a skip); this script exits with their exit code. Needs root, an installed checkout (npm ci) and
# Debian's archive (once, for the root). Run as `bash scripts/cgroup2-lane.sh`; see docs/decisions/0009-cgroup-v2-lane.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)
export DEBIAN_FRONTEND=noninteractive

cache=/var/cache/agentyard/uml-root
memory=${AGENTYARD_LANE_MEMORY:-3G}
timeout_s=${AGENTYARD_LANE_TIMEOUT:-1200}
# What the tests use in the guest: the sandbox tools, iproute2 (to bring up loopback), mkfs and the
# loop module's loader for the workspace disks, libstdc++ for the host's node binary (copied in at each run).
packages=bubblewrap,util-linux,mount,procps,socat,ca-certificates,iproute2,e2fsprogs,kmod,libstdc++6
recipe="bookworm minbase $packages"

# The cgroup code's tests and the local backend's, with the sandbox contract as it runs for it: limits, freezer,
# OOM counts, release leaving nothing behind. Left out, as too slow for the guest (a guest process start or page
# fault costs a host round trip; the 245 MB Claude CLI takes about a minute there just for --version): the contract
# case that runs the CLI, and test/e2e/hostile.test.ts, whose every probe is a CLI turn with a 60-90 s bound (the
# contract covers its cgroup cases: fork loop, release). Also left out for now: the contract's memory-limit case,
# which in about one run of three in the guest loses the sandbox's gateway bridge (socat) to a second OOM kill; the
# memory cgroup's limit and OOM counting are still checked by cgroups.test.ts and the local provider's own tests.
# Nothing here needs Docker or PostgreSQL.
vitest_args=(
  src/sandbox/cgroups.test.ts
  src/sandbox/local/
  --no-file-parallelism
  -t '^(?!.*(runs the real claude binary from PATH|enforces the memory limit))'
)

started=$SECONDS
say() { printf 'cgroup2 lane: %s\n' "$*"; }

[[ $(id -u) -eq 0 ]] || { echo "cgroup2 lane: run as root (debootstrap, and the guest's sandboxes)" >&2; exit 1; }
[[ -f node_modules/vitest/vitest.mjs && -x node_modules/@anthropic-ai/claude-code/bin/claude.exe ]] || {
  echo "cgroup2 lane: node_modules missing: run npm ci first" >&2
  exit 1
}
[[ $repo != *[[:space:]]* ]] || { echo "cgroup2 lane: the checkout's path must not contain spaces: $repo" >&2; exit 1; }
node=$(command -v node) || { echo "cgroup2 lane: node not found" >&2; exit 1; }

if ! command -v linux.uml >/dev/null || ! command -v debootstrap >/dev/null; then
  say "installing user-mode-linux and debootstrap"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends user-mode-linux debootstrap >/dev/null
fi
modules=(/usr/lib/uml/modules/*/)
[[ ${#modules[@]} -eq 1 && -d ${modules[0]} ]] || { echo "cgroup2 lane: expected one kernel in /usr/lib/uml/modules" >&2; exit 1; }
kernel=$(basename "${modules[0]}")

mkdir -p "$(dirname "$cache")"
# One lane at a time on a machine: the lock is held until the guest has halted.
exec 9> "$cache.lock"
flock 9
if [[ -f $cache/.agentyard-recipe && $(< "$cache/.agentyard-recipe") == "$recipe" ]]; then
  say "reusing the guest root in $cache"
else
  # The archive this host's apt uses for bookworm main (deb822 sources or one-line sources.list entries).
  archive=$(awk -v RS= '/Suites:[^\n]*bookworm( |\n|$)/ && /Components:[^\n]*main/ { for (i = 1; i < NF; i++) if ($i == "URIs:") print $(i + 1) }' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1 || true)
  [[ -n $archive ]] || archive=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" && / bookworm / && / main/ { print $2 }' | grep -v security | head -n 1 || true)
  [[ -n $archive ]] || { echo "cgroup2 lane: no Debian archive configured in /etc/apt" >&2; exit 1; }
  say "building the guest root in $cache from $archive (once; takes a few minutes)"
  rm -rf "$cache.new" "$cache"
  debootstrap --variant=minbase --include="$packages" bookworm "$cache.new" "$archive" > "$cache.new.log" 2>&1 || {
    tail -n 30 "$cache.new.log" >&2
    echo "cgroup2 lane: debootstrap failed (full log: $cache.new.log)" >&2
    exit 1
  }
  rm -f "$cache.new.log"
  rm -rf "$cache.new"/var/cache/apt/archives/*.deb
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$cache.new/etc/hosts"
  mkdir -p "$cache.new/lane" "$cache.new/agentyard"
  echo "$recipe" > "$cache.new/.agentyard-recipe"
  mv "$cache.new" "$cache"
fi
# What changes with the host: its node, the UML kernel's modules, the guest's init. Copied only when they differ.
cmp -s "$node" "$cache/usr/local/bin/node" || install -m 755 "$node" "$cache/usr/local/bin/node"
[[ -d $cache/usr/lib/modules/$kernel ]] || { rm -rf "$cache/usr/lib/modules"; mkdir -p "$cache/usr/lib/modules"; cp -a "${modules[0]}" "$cache/usr/lib/modules/$kernel"; }
cmp -s scripts/cgroup2-lane/guest-init.sh "$cache/sbin/agentyard-lane-init" || install -m 755 scripts/cgroup2-lane/guest-init.sh "$cache/sbin/agentyard-lane-init"
prepared=$SECONDS

lane=$(mktemp -d /tmp/agentyard-cgroup2-lane.XXXXXX)
trap 'rm -rf "$lane"' EXIT
printf '%s\n' "${vitest_args[@]}" > "$lane/vitest-args"
say "booting User-mode Linux $kernel (mem=$memory) on a read-only hostfs root"
# The guest's console is this script's stdout. UML keeps its memory in a deleted file under TMPDIR: RAM-backed.
memory_dir=/dev/shm
[[ -d $memory_dir && -w $memory_dir ]] || memory_dir=$lane
set +e
TMPDIR=$memory_dir timeout --kill-after=20 "$timeout_s" linux.uml \
  mem="$memory" root=/dev/root rootfstype=hostfs rootflags="$cache" ro init=/sbin/agentyard-lane-init \
  cgroup_no_v1=all quiet con=null ssl=null con0=null,fd:1 \
  agentyard_repo="$repo" agentyard_lane="$lane" < /dev/null
uml_status=$?
set -e
finished=$SECONDS

if [[ ! -f $lane/status ]]; then
  say "FAILED: the guest did not report (User-mode Linux exited with $uml_status$([[ $uml_status -eq 124 ]] && echo ", timed out after $timeout_s s"))"
  exit 1
fi
status=$(< "$lane/status")
say "root ready in $((prepared - started)) s, guest boot and tests $((finished - prepared)) s, total $((finished - started)) s"
if [[ $status == 0 ]]; then say "passed"; else say "FAILED: the tests exited with $status"; fi
exit "$status"
