#!/usr/bin/env bash
# Builds the sandbox image's root file system offline (only the Debian archive is needed) and writes it as a tar.
# usage: build-rootfs.sh OUTPUT.tar SUITE MIRROR PACKAGES(comma-separated)
# Needs root and debootstrap. Progress goes to stdout, one line per step.
set -euo pipefail
output=$1 suite=$2 mirror=$3 packages=$4
uid=64000
work=$(mktemp -d "${TMPDIR:-/tmp}/agentyard-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

echo "debootstrap $suite (minbase + $packages)"
# debootstrap prints one line per package; show every tenth so that progress is visible without flooding.
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" 2>&1 \
  | awk '/^[EW]:/ { print; fflush(); next } /^I: (Retrieving|Validating|Extracting|Unpacking|Configuring)/ { n++; if (n % 25 == 0) { print "  " $0 " (" n " steps)"; fflush() }; next } /^I: / { print "  " $0; fflush() }'
test -x "$root/bin/sh"

echo "configuring the agent user ($uid), directories and hardening"
chroot "$root" groupadd --gid "$uid" agent
chroot "$root" useradd --uid "$uid" --gid "$uid" --home-dir /home/agent --shell /bin/bash --no-create-home agent
install -d -m 0755 -o "$uid" -g "$uid" "$root/home/agent" "$root/workspace"
install -d -m 0755 "$root/opt/agentyard/bin" "$root/run/agentyard"
# No setuid or setgid binaries: with no-new-privileges they would not work anyway, and nothing should try.
find "$root" -xdev -type f -perm /6000 -exec chmod ug-s {} +
printf '127.0.0.1\tlocalhost agentyard\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
  "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old

echo "writing $(du -sh "$root" | cut -f1) root file system to $output"
tar --numeric-owner --xattrs -C "$root" -cf "$output.partial" .
mv "$output.partial" "$output"
