#!/bin/bash
# Process 1 of the cgroup v2 lane's User-mode Linux guest; scripts/cgroup2-lane.sh copies it into the guest root.
# The kernel command line hands it agentyard_repo and agentyard_lane, two host directories it mounts through hostfs:
# the checkout (with its node_modules) and the lane's exchange directory, which holds `vitest-args` (one argument a
# line) and receives `status`, the tests' exit code. The guest then powers off.
set -u
export PATH=/usr/local/bin:/usr/bin:/usr/sbin HOME=/root LANG=C.UTF-8
status=1
finish() {
  echo "$status" > /lane/status
  sync
  echo o > /proc/sysrq-trigger
  sleep 60
}
trap finish EXIT

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# The root (the cached debootstrap) is read-only; everything the tests write goes to tmpfs or the checkout.
for directory in /tmp /run /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "$directory"; done
mount -t tmpfs -o mode=700 tmpfs /root
mount -t hostfs -o "$agentyard_lane" hostfs /lane
mount -t hostfs -o "$agentyard_repo" hostfs /agentyard
# cgroup v2 only (the kernel was booted with cgroup_no_v1=all). As systemd does, the root delegates every controller
# and the work runs in a child cgroup, never in the root one.
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for controller in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$controller" > /sys/fs/cgroup/cgroup.subtree_control; done
mkdir /sys/fs/cgroup/lane
echo $$ > /sys/fs/cgroup/lane/cgroup.procs
ip link set lo up
hostname cgroup2-lane
modprobe loop

booted=$(cut -d ' ' -f 1 /proc/uptime)
echo "guest: Linux $(uname -r), $(nproc) CPU, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB;" \
  "cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control); booted in ${booted} s"
mapfile -t vitest_args < /lane/vitest-args
cd /agentyard
env -i PATH="$PATH" HOME=/root LANG=C.UTF-8 CI=true TZ=UTC \
  AGENTYARD_TEST_CGROUP=v2 AGENTYARD_TEST_LIMITS=required \
  node node_modules/vitest/vitest.mjs run "${vitest_args[@]}"
status=$?
echo "guest: tests ran for $(awk -v booted="$booted" '{ printf "%.0f", $1 - booted }' /proc/uptime) s, exit code $status"
