import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDocker } from '../../src/sandbox/docker/docker-client.ts';
import { dockerUnavailable, testImage } from '../../src/sandbox/docker/docker-test-support.ts';
import type { ApiClient } from '../support/api-client.ts';
import { platformSecret, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { createSandboxProber, hiddenAssignment, marker, markers, type SandboxProber } from '../support/sandbox-probes.ts';

/**
 * Hostile input, as real agent turns (the scripted model has the real CLI run Bash) through the whole platform,
 * on every sandbox backend this host has. Each backend gets one platform, two users and a few conversations.
 */
const backends: Array<{ name: string; env: Record<string, string>; skip: string | null }> = [
  { name: 'local', env: { AGENTYARD_WORKSPACE_DISK_MB: '256' }, skip: null },
  {
    name: 'docker (runc)',
    env: { AGENTYARD_SANDBOX: 'docker', AGENTYARD_DOCKER_RUNTIME: 'runc', AGENTYARD_SANDBOX_IMAGE: testImage, AGENTYARD_SANDBOX_POOL_SIZE: '1', AGENTYARD_WORKSPACE_DISK_MB: '256' },
    skip: await dockerUnavailable('runc', process.env),
  },
  {
    name: 'docker (runsc)',
    env: { AGENTYARD_SANDBOX: 'docker', AGENTYARD_DOCKER_RUNTIME: 'runsc', AGENTYARD_SANDBOX_IMAGE: testImage, AGENTYARD_WORKSPACE_DISK_MB: '256' },
    skip: await dockerUnavailable('runsc', process.env),
  },
];

for (const backend of backends) {
  const docker = backend.env.AGENTYARD_SANDBOX === 'docker';
  // Past its pids or memory limit a gVisor sandbox dies as a whole (the limits count the sandbox's host threads and
  // memory, not one process's): the turn fails and the next message starts a new sandbox. Elsewhere only the process
  // that went over is refused or killed, and the turn goes on.
  const diesWhole = backend.name.includes('runsc');
  describe.skipIf(backend.skip !== null)(`hostile input on the ${backend.name} backend${backend.skip ? ` (skipped: ${backend.skip})` : ''}`, () => {
    let test: TestPlatform;
    let prober: SandboxProber;
    let alice: ApiClient;
    let bob: ApiClient;

    const newConversation = async (client: ApiClient, title: string): Promise<string> => {
      const response = await client.request('POST', '/api/conversations', { title });
      expect(response.status).toBe(201);
      return response.body.id as string;
    };

    /**
     * Which sandbox a conversation's commands run in: a random mark kept in its /tmp (each sandbox's own), printed by
     * every probe that ends with `readMark`. A new sandbox has none.
     */
    const setMark = 'echo "$RANDOM$RANDOM$RANDOM" > /tmp/hostile-mark; echo "MARK=$(cat /tmp/hostile-mark)"';
    const readMark = 'echo "MARK=$(cat /tmp/hostile-mark 2>/dev/null || echo none)"';

    /** A gVisor sandbox's container, found by its conversation's label (only runc sandboxes come from the unlabelled pool). */
    const containerOf = async (conversationId: string): Promise<string> => {
      const containers = await conversationContainers(conversationId);
      expect(containers.map((container) => container.state)).toEqual(['running']);
      return containers[0]!.id;
    };

    /** After a sandbox died: its container no longer runs, and the next turn runs in a new one. */
    const expectReplaced = async (conversationId: string, deadContainer: string): Promise<void> => {
      const left = await conversationContainers(conversationId);
      expect(left.filter((container) => container.id === deadContainer && container.state === 'running')).toEqual([]);
      const next = await prober.run(alice, conversationId, `echo NEXT=ok; ${readMark}`, { timeoutMs: 90_000 });
      expect(marker(next.output, 'NEXT')).toBe('ok');
      expect(marker(next.output, 'MARK')).toBe('none');
      expect(next.events.filter((event) => event.event === 'error')).toEqual([]);
      expect(await containerOf(conversationId)).not.toBe(deadContainer);
    };

    beforeAll(async () => {
      test = await startTestPlatform({ env: backend.env });
      prober = createSandboxProber(test.model);
      prober.install();
      alice = await test.api.registerWithToken(`alice-${randomBytes(3).toString('hex')}@example.com`);
      bob = await test.api.registerWithToken(`bob-${randomBytes(3).toString('hex')}@example.com`);
    });
    afterAll(() => test?.close());

    it(
      diesWhole
        ? 'a fork bomb kills only its own gVisor sandbox: the turn fails with SANDBOX_CRASHED, the next message gets a new sandbox, the platform and another user’s sandbox keep answering'
        : 'contains a fork bomb while the platform and another user’s sandbox keep answering, and the turn goes on',
      async () => {
        const bomber = await newConversation(alice, 'fork bomb');
        const neighbour = await newConversation(bob, 'neighbour');
        // Warm both sandboxes, so that the timings below are of answering, not of starting.
        const bomberMark = marker((await prober.run(alice, bomber, setMark, { timeoutMs: 90_000 })).output, 'MARK');
        const neighbourMark = marker((await prober.run(bob, neighbour, setMark, { timeoutMs: 90_000 })).output, 'MARK');
        const bomberContainer = diesWhole ? await containerOf(bomber) : null;
        const calmStartedAt = performance.now();
        await prober.run(bob, neighbour, 'echo CALM=1', { timeoutMs: 90_000 });
        const calmMs = performance.now() - calmStartedAt;
        const bomb = [
          // Waiting must not need a fork once the bomb holds every process slot: read from a FIFO with a timeout.
          'mkfifo /tmp/hold; exec 9<>/tmp/hold',
          `setsid bash -c 'b() { b | b & }; b' > /dev/null 2>&1 &`,
          'read -t 15 -u 9',
          'kill -9 -- -$! 2>/dev/null; read -t 3 -u 9',
          'echo BOMB=over',
        ].join('\n');
        const bombing = prober.turn(alice, bomber, bomb, { timeoutMs: 120_000, commandTimeoutMs: 90_000 });
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        const health: number[] = [];
        const polling = (async () => {
          for (let index = 0; index < 10; index += 1) {
            const startedAt = performance.now();
            const response = await fetch(`${test.platform.url}/healthz`);
            health.push(performance.now() - startedAt);
            expect(response.status).toBe(200);
            await new Promise((resolve) => setTimeout(resolve, 500));
          }
        })();
        const startedAt = performance.now();
        const neighbourProbe = await prober.run(bob, neighbour, `echo NEIGHBOUR=alive; ${readMark}`, { timeoutMs: 90_000 });
        const neighbourMs = performance.now() - startedAt;
        await polling;
        const bombed = await bombing;
        expect(marker(neighbourProbe.output, 'NEIGHBOUR')).toBe('alive');
        // The neighbour kept its own sandbox throughout.
        expect(marker(neighbourProbe.output, 'MARK')).toBe(neighbourMark);
        health.sort((a, b) => a - b);
        // The figures for the record (bench/ has the measurements): the platform's health check and another user's
        // whole turn (model round trips through the real CLI included), measured while the bomb ran.
        console.log(
          `[${backend.name}] during the fork bomb: /healthz p50 ${health[Math.floor(health.length / 2)]!.toFixed(1)} ms, max ${health.at(-1)!.toFixed(1)} ms; ` +
            `another user's turn ${Math.round(neighbourMs)} ms (before the bomb: ${Math.round(calmMs)} ms)`,
        );
        // Only bounds that catch a platform that stopped answering: this machine may be loaded.
        expect(health.at(-1), `health latencies ${health.map(Math.round).join(' ')} ms`).toBeLessThan(10_000);
        const errors = bombed.events.filter((event) => event.event === 'error').map((event) => event.data);
        if (diesWhole) {
          const crashed = {
            code: 'SANDBOX_CRASHED',
            message: expect.stringMatching(/^the agent's sandbox stopped unexpectedly, .* limit of \d+ processes\)\. The workspace is kept; the next message starts a new sandbox$/),
          };
          expect(bombed.ended, JSON.stringify(bombed.events.map((event) => event.data))).toMatchObject({ status: 'failed', error: crashed });
          expect(errors).toEqual([expect.objectContaining(crashed)]);
          await expectReplaced(bomber, bomberContainer!);
        } else {
          expect(bombed.ended, JSON.stringify(bombed.events.map((event) => event.data))).toMatchObject({ status: 'completed' });
          expect(errors).toEqual([]);
          const output = bombed.events.find((event) => event.event === 'tool.ended')?.data.output;
          expect(marker(String(output), 'BOMB')).toBe('over');
          const after = await prober.run(alice, bomber, `echo AFTER=ok; ${readMark}`, { timeoutMs: 90_000 });
          expect(marker(after.output, 'AFTER')).toBe('ok');
          expect(marker(after.output, 'MARK')).toBe(bomberMark);
        }
      },
    );

    it(
      diesWhole
        ? 'a memory bomb kills its whole gVisor sandbox: the turn fails with SANDBOX_OUT_OF_MEMORY, the next message gets a new sandbox, a neighbour is untouched'
        : 'OOM-kills a memory bomb, tells the user in an error event, and the turn and the conversation go on',
      async () => {
        const conversation = await newConversation(alice, 'memory bomb');
        const neighbour = await newConversation(bob, 'memory neighbour');
        const mark = marker((await prober.run(alice, conversation, setMark, { timeoutMs: 90_000 })).output, 'MARK');
        const neighbourMark = marker((await prober.run(bob, neighbour, setMark, { timeoutMs: 90_000 })).output, 'MARK');
        const container = diesWhole ? await containerOf(conversation) : null;
        const bombed = await prober.turn(alice, conversation, `python3 -c 'l = []\nwhile True: l.append(b"x" * (32 << 20))'; echo MEMORY=$?`, {
          timeoutMs: 120_000,
          commandTimeoutMs: 90_000,
        });
        const errors = bombed.events.filter((event) => event.event === 'error').map((event) => event.data);
        const described = JSON.stringify(bombed.events.map((event) => event.data));
        // Told once, in the turn it happened in, naming the limit.
        const notice = {
          code: 'SANDBOX_OUT_OF_MEMORY',
          message: "a process in the sandbox was killed: the sandbox reached the agent's memory limit of 2048 MiB; raise the limit if the agent's work needs more",
        };
        if (diesWhole) {
          const stopped = {
            code: 'SANDBOX_OUT_OF_MEMORY',
            message: 'the agent was stopped: its sandbox went over the memory limit of 2048 MiB. The workspace is kept; the next message goes on',
          };
          expect(bombed.ended, described).toMatchObject({ status: 'failed', error: stopped });
          expect(errors, described).toEqual([expect.objectContaining(notice), expect.objectContaining(stopped)]);
          await expectReplaced(conversation, container!);
        } else {
          expect(bombed.ended, described).toMatchObject({ status: 'completed' });
          expect(errors, described).toEqual([expect.objectContaining(notice)]);
          const output = bombed.events.find((event) => event.event === 'tool.ended')?.data.output;
          expect(marker(String(output), 'MEMORY')).toBe('137');
          const next = await prober.run(alice, conversation, `echo NEXT=ok; ${readMark}`, { timeoutMs: 90_000 });
          expect(marker(next.output, 'NEXT')).toBe('ok');
          expect(marker(next.output, 'MARK')).toBe(mark);
          expect(next.events.filter((event) => event.event === 'error')).toEqual([]);
        }
        const calm = await prober.run(bob, neighbour, `echo CALM=1; ${readMark}`, { timeoutMs: 90_000 });
        expect(marker(calm.output, 'CALM')).toBe('1');
        expect(marker(calm.output, 'MARK')).toBe(neighbourMark);
        expect(calm.events.filter((event) => event.event === 'error')).toEqual([]);
      },
    );

    it('stops filling /tmp at its limit with ENOSPC', async () => {
      const conversation = await newConversation(alice, 'disk fill');
      const result = await prober.run(
        alice,
        conversation,
        // The CLI's Bash tool keeps its own files in /tmp: report through the workspace until /tmp has room again.
        [
          'log=/workspace/fill.log',
          'echo LIMIT_KB=$(df -k --output=size /tmp | tail -n 1 | tr -d " ") > $log',
          'head -c 8000000000 /dev/zero > /tmp/fill 2> /workspace/fill.err; echo FILL=$? >> $log',
          'grep -q "No space left" /workspace/fill.err && echo ENOSPC=yes >> $log',
          'echo WRITTEN_KB=$(( $(stat -c %s /tmp/fill) / 1024 )) >> $log',
          'rm -f /tmp/fill; cat $log; echo STILL=ok',
        ].join('\n'),
        // Filling a few hundred MiB through gVisor's file system took over a minute on a loaded 2-core machine.
        { timeoutMs: 120_000 },
      );
      const found = markers(result.output);
      expect(found.FILL, result.output).not.toBe('0');
      expect(found.ENOSPC, result.output).toBe('yes');
      expect(Number(found.WRITTEN_KB)).toBeLessThanOrEqual(Number(found.LIMIT_KB));
      expect(Number(found.LIMIT_KB)).toBeLessThan(4_000_000);
      expect(found.STILL).toBe('ok');
    });

    it('stops filling the workspace at its size limit with ENOSPC, tells the user, and leaves other workspaces their room', async () => {
      const conversation = await newConversation(alice, 'workspace fill');
      const other = await newConversation(bob, 'workspace neighbour');
      const result = await prober.run(
        alice,
        conversation,
        [
          'head -c 1000000000 /dev/zero 2> /tmp/fill.err > /workspace/fill; echo FILL=$?',
          'grep -q "No space left" /tmp/fill.err && echo ENOSPC=yes',
          'echo WRITTEN_MB=$(( $(stat -c %s /workspace/fill) / 1048576 ))',
          'echo STILL=ok',
        ].join('\n'),
      );
      const found = markers(result.output);
      expect(found.FILL, result.output).not.toBe('0');
      expect(found.ENOSPC, result.output).toBe('yes');
      expect(Number(found.WRITTEN_MB)).toBeLessThanOrEqual(256);
      expect(Number(found.WRITTEN_MB)).toBeGreaterThan(200);
      expect(found.STILL).toBe('ok');
      expect(result.events.filter((event) => event.event === 'error').map((event) => event.data)).toEqual([
        expect.objectContaining({ code: 'WORKSPACE_FULL', message: expect.stringContaining('limit is 256 MiB') }),
      ]);
      // Another user's workspace still takes a 50 MB file while this one is full.
      const neighbour = await prober.run(bob, other, 'head -c 50000000 /dev/zero > /workspace/big; echo BIG=$?; rm /workspace/big');
      expect(marker(neighbour.output, 'BIG')).toBe('0');
      // Deleting the file gives the room back; the conversation goes on.
      const next = await prober.run(alice, conversation, 'rm -f /workspace/fill; echo data > /workspace/after.txt; echo NEXT=$?');
      expect(marker(next.output, 'NEXT')).toBe('0');
      expect(next.events.filter((event) => event.event === 'error')).toEqual([]);
    });

    it('has no egress of any kind: TCP, UDP, DNS and ICMP to the outside, the host and the platform all fail', async () => {
      const conversation = await newConversation(alice, 'egress');
      const accepted: string[] = [];
      const listener: Server = createServer((socket) => {
        accepted.push(String(socket.remoteAddress));
        socket.destroy();
      });
      await new Promise<void>((resolve) => listener.listen(0, '0.0.0.0', resolve));
      const udp: UdpSocket = createSocket({ type: 'udp4' });
      const datagrams: string[] = [];
      udp.on('message', (_message, remote) => datagrams.push(remote.address));
      await new Promise<void>((resolve) => udp.bind(0, '0.0.0.0', resolve));
      try {
        const tcpPort = (listener.address() as { port: number }).port;
        const udpPort = udp.address().port;
        const platformPort = Number(new URL(test.platform.url).port);
        const addresses = hostAddresses();
        const targets: Array<[string, string, number]> = [
          ['PLATFORM', '127.0.0.1', platformPort],
          ['LISTENER', '127.0.0.1', tcpPort],
          ...addresses.map((address, index): [string, string, number] => [`HOST_${index}`, address, tcpPort]),
          ...addresses.map((address, index): [string, string, number] => [`HOST_PLATFORM_${index}`, address, platformPort]),
          ['OUTSIDE', '1.1.1.1', 443],
        ];
        const icmp = [
          'import socket',
          'try:',
          '    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP); s.settimeout(3)',
          '    s.sendto(bytes([8, 0, 0xf7, 0xff, 0, 0, 0, 0]), ("1.1.1.1", 0)); s.recvfrom(64); print("ICMP=0")',
          'except Exception as error:',
          '    print("ICMP=" + type(error).__name__)',
          'try:',
          '    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print("RAW=0")',
          'except Exception as error:',
          '    print("RAW=" + type(error).__name__)',
        ].join('\n');
        const result = await prober.run(
          alice,
          conversation,
          [
            `tcp() { timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; echo "$1=$?"; }`,
            ...targets.map(([name, host, port]) => `tcp ${name} ${host} ${port}`),
            `timeout 3 bash -c 'echo x > /dev/udp/1.1.1.1/53' 2>/dev/null; echo UDP_OUTSIDE=$?`,
            ...addresses.map((address, index) => `timeout 3 bash -c 'echo x > /dev/udp/${address}/${udpPort}' 2>/dev/null; echo UDP_HOST_${index}=$?`),
            'timeout 5 getent hosts example.com > /dev/null; echo DNS=$?',
            `python3 -c '${icmp}'`,
            `echo "INTERFACES=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')"`,
          ].join('\n'),
          { commandTimeoutMs: 60_000 },
        );
        const found = markers(result.output);
        for (const [name] of targets) expect(found[name], `${name}\n${result.output}`).toMatch(/^[1-9]\d*$/);
        expect(found.UDP_OUTSIDE, result.output).toMatch(/^[1-9]\d*$/);
        for (const index of addresses.keys()) expect(found[`UDP_HOST_${index}`], result.output).toMatch(/^[1-9]\d*$/);
        expect(found.DNS, result.output).toMatch(/^[1-9]\d*$/);
        expect(found.ICMP, result.output).not.toBe('0');
        expect(found.RAW, result.output).not.toBe('0');
        expect(found.INTERFACES?.trim(), result.output).toBe('lo');
        expect(accepted).toEqual([]);
        expect(datagrams).toEqual([]);
      } finally {
        listener.close();
        udp.close();
      }
    });

    it('has no Docker socket, no writable host mount beyond its workspace, and sees no other sandbox', async () => {
      const conversation = await newConversation(alice, 'mounts');
      const neighbour = await newConversation(bob, 'neighbour process');
      const tag = `${700 + (randomBytes(1)[0]! % 99)}.${randomBytes(3).readUIntBE(0, 3)}`;
      await prober.run(bob, neighbour, `(setsid sleep ${tag} > /dev/null 2>&1 &); echo STARTED=1`);
      // The probe's own command line must not contain what it looks for.
      const result = await prober.run(
        alice,
        conversation,
        [
          `echo "SOCKETS=$(find / -xdev \\( -path /proc -o -path /sys \\) -prune -o -type s -print 2>/dev/null | tr '\\n' ' ')"`,
          `for path in /var/run/docker.sock /run/docker.sock /run/containerd/containerd.sock; do [ -e $path ] && echo "DOCKER_SOCKET=$path"; done; echo DOCKER_SOCKET_CHECKED=1`,
          // Writable mounts: every mount point without "ro" in its options.
          `echo "RW_MOUNTS=$(awk '$4 !~ /(^|,)ro(,|$)/ { print $2 }' /proc/self/mounts | sort -u | tr '\\n' ' ')"`,
          hiddenAssignment('T', `sleep ${tag}`),
          `echo "FOREIGN=$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -cF -f <(printf '%s\\n' "$T"))"`,
          `echo "PROCESSES=$(ls -d /proc/[0-9]* | wc -l)"`,
        ].join('\n'),
      );
      const found = markers(result.output);
      expect(found.DOCKER_SOCKET_CHECKED).toBe('1');
      expect(found.DOCKER_SOCKET, result.output).toBeUndefined();
      const sockets = (found.SOCKETS ?? '').trim().split(' ').filter(Boolean);
      expect(sockets.filter((socket) => socket !== '/run/agentyard/gateway.sock'), result.output).toEqual([]);
      const allowed = ['/workspace', '/home/agent', '/tmp', '/dev/shm', '/run/agentyard/gateway.sock', '/run/agentyard', '/proc', '/dev', '/dev/pts', '/dev/mqueue', '/sys/fs/cgroup', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf'];
      const writable = (found.RW_MOUNTS ?? '').trim().split(' ').filter(Boolean);
      // Not host directories: device nodes (the local backend binds each one), Docker's masks over /proc files
      // (/dev/null or an empty tmpfs), gVisor's own emulated cgroupfs.
      const harmless = (mount: string) => mount.startsWith('/dev/') || mount.startsWith('/proc/') || mount.startsWith('/sys/fs/cgroup') || mount === '/sys/firmware';
      expect(writable.filter((mount) => !allowed.includes(mount) && !harmless(mount)), result.output).toEqual([]);
      expect(found.FOREIGN, result.output).toBe('0');
      expect(Number(found.PROCESSES)).toBeLessThan(20);
    });

    it('makes privilege probes fail: mount, unshare, ptrace, /proc/sys, setuid', async () => {
      const conversation = await newConversation(alice, 'privileges');
      const ptrace = [
        'import ctypes, os',
        'libc = ctypes.CDLL(None, use_errno=True)',
        'me = os.getuid(); attached = []',
        'for entry in os.listdir("/proc"):',
        '    if not entry.isdigit(): continue',
        '    try: uid = os.stat("/proc/" + entry).st_uid',
        '    except OSError: continue',
        '    if uid != me and libc.ptrace(16, int(entry), 0, 0) == 0: attached.append(entry)',
        'print("PTRACE_OTHERS=" + (" ".join(attached) or "none"))',
      ].join('\n');
      const result = await prober.run(
        alice,
        conversation,
        [
          'mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null; echo MOUNT=$?',
          'unshare --mount true 2>/dev/null; echo UNSHARE_MOUNT=$?',
          'unshare --net true 2>/dev/null; echo UNSHARE_NET=$?',
          'echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; echo PROC_SYS=$?',
          'echo 1 > /proc/sysrq-trigger 2>/dev/null; echo SYSRQ=$?',
          `python3 -c '${ptrace}'`,
          `python3 -c 'import ctypes; print("NO_NEW_PRIVS=%d" % ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))'`,
          `echo "CAPS=$(awk '/^CapEff/ { print $2 }' /proc/self/status)"`,
          // A setuid binary, if the system has one, must not raise privileges.
          'su_path=$(command -v su || true); if [ -n "$su_path" ]; then su -c "id -u" root < /dev/null > /dev/null 2>&1; echo SU=$?; else echo SU=absent; fi',
          'echo "UID=$(id -u)"',
        ].join('\n'),
      );
      const found = markers(result.output);
      for (const name of ['MOUNT', 'UNSHARE_MOUNT', 'UNSHARE_NET', 'PROC_SYS', 'SYSRQ']) expect(found[name], `${name}\n${result.output}`).toMatch(/^[1-9]\d*$/);
      expect(found.PTRACE_OTHERS, result.output).toBe('none');
      expect(found.NO_NEW_PRIVS).toBe('1');
      expect(found.CAPS).toMatch(/^0+$/);
      expect(found.SU, result.output).not.toBe('0');
      expect(Number(found.UID)).toBeGreaterThan(0);
    });

    it('leaves no process behind after the sandbox is released', async () => {
      const conversation = await newConversation(alice, 'leftovers');
      const tag = `${800 + (randomBytes(1)[0]! % 99)}.${randomBytes(3).readUIntBE(0, 3)}`;
      const started = await prober.run(alice, conversation, `(setsid sleep ${tag} > /dev/null 2>&1 &); (nohup sleep ${tag} > /dev/null 2>&1 &); echo STARTED=1`);
      expect(marker(started.output, 'STARTED')).toBe('1');
      const response = await alice.request('DELETE', `/api/conversations/${conversation}`);
      expect(response.status).toBe(204);
      expect(await hostProcessesMatching(`sleep\0${tag}`)).toEqual([]);
      if (docker) expect(await conversationContainers(conversation)).toEqual([]);
    });

    it('never gives the sandbox the real model credential: not in env, /proc/*/environ or files', async () => {
      const conversation = await newConversation(alice, 'credential');
      const fragments = [platformSecret, platformSecret.slice(14, 40), platformSecret.slice(-20)];
      const result = await prober.run(
        alice,
        conversation,
        [
          ...fragments.map((fragment, index) => hiddenAssignment(`S${index}`, fragment)),
          `secrets() { printf '%s\\n' ${fragments.map((_, index) => `"$S${index}"`).join(' ')}; }`,
          'echo "ENV=$(env | grep -cF -f <(secrets))"',
          'hits=0; read=0; for file in /proc/[0-9]*/environ; do content=$(tr "\\0" "\\n" < $file 2>/dev/null) || continue; read=$((read+1)); printf %s "$content" | grep -qF -f <(secrets) && hits=$((hits+1)); done',
          'echo "ENVIRON_READ=$read"; echo "ENVIRON_HITS=$hits"',
          `echo "FILES=$(grep -rlsF -D skip -f <(secrets) /workspace /home /tmp /run /etc /opt 2>/dev/null | wc -l)"`,
        ].join('\n'),
      );
      const found = markers(result.output);
      expect(found.ENV, result.output).toBe('0');
      expect(Number(found.ENVIRON_READ)).toBeGreaterThanOrEqual(2);
      expect(found.ENVIRON_HITS, result.output).toBe('0');
      expect(found.FILES, result.output).toBe('0');
    });

    it('never lets a canary from one conversation appear in another’s sandbox, pooled or not', async () => {
      const first = await newConversation(alice, 'canary');
      const value = `canary-${randomBytes(16).toString('hex')}`;
      const written = await prober.run(
        alice,
        first,
        [hiddenAssignment('V', value), 'for directory in /workspace /home/agent /tmp; do printf "%s\\n" "$V" > $directory/canary.txt || exit 1; done', 'echo WROTE=$?'].join('\n'),
      );
      expect(marker(written.output, 'WROTE')).toBe('0');
      const search = [hiddenAssignment('V', value), `echo "FOUND=$(grep -rlsF -D skip "$V" /workspace /home /tmp /run /opt 2>/dev/null | wc -l)"`].join('\n');
      // Another user's conversation while the canary's sandbox is live, and one started after it was released.
      const concurrent = await newConversation(bob, 'concurrent');
      expect(marker((await prober.run(bob, concurrent, search)).output, 'FOUND')).toBe('0');
      expect((await alice.request('DELETE', `/api/conversations/${first}`)).status).toBe(204);
      const later = await newConversation(bob, 'later');
      expect(marker((await prober.run(bob, later, search)).output, 'FOUND')).toBe('0');
    });
  });
}

/** Every container of a conversation's sandboxes, running or not. */
async function conversationContainers(conversationId: string): Promise<Array<{ id: string; state: string }>> {
  const engine = await connectDocker(process.env.DOCKER_HOST);
  const listed = await engine.listContainers({ all: true, filters: { label: [`dev.agentyard.label.conversation=${conversationId}`] } });
  return listed.map((container) => ({ id: container.Id, state: container.State }));
}

function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry !== undefined && !entry.internal && entry.family === 'IPv4')
    .map((entry) => entry!.address);
}

async function hostProcessesMatching(text: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const commandLine = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.startsWith(text)) found.push(Number(entry));
  }
  return found;
}
