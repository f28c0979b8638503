#!/usr/bin/env bash
# Configures dockerd with gVisor's runsc runtime (no network of its own, host unix sockets openable for the
# gateway bridge) and starts it in the background unless an engine already answers. For CI and dev machines
# without systemd; on a systemd host, write the same daemon.json and `systemctl restart docker`.
# Sandboxes have no network, so dockerd gets no bridge and leaves iptables alone (its default would set the
# host's FORWARD policy to DROP, breaking other network namespaces on the host).
set -euo pipefail
mkdir -p /etc/docker
if [ ! -s /etc/docker/daemon.json ]; then
  cat > /etc/docker/daemon.json <<'JSON'
{
  "runtimes": {
    "runsc": { "path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--host-uds=open"] }
  },
  "bridge": "none",
  "iptables": false,
  "ip-forward": false,
  "log-driver": "local",
  "log-opts": { "max-size": "1m", "max-file": "2" }
}
JSON
fi
if docker version >/dev/null 2>&1; then
  echo "dockerd already running"
  exit 0
fi
setsid nohup dockerd > /var/log/agentyard-dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  docker version >/dev/null 2>&1 && { echo "dockerd started"; exit 0; }
  sleep 0.5
done
echo "dockerd did not start; its log:" >&2
tail -n 30 /var/log/agentyard-dockerd.log >&2
exit 1
