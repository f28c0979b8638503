import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerUnavailable, testImage } from '../../src/sandbox/docker/docker-test-support.ts';
import type { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { createSandboxProber, marker, type SandboxProber } from '../support/sandbox-probes.ts';

/**
 * Issue 9, item 1: a sandbox that floods its gateway socket with idle connections must not use up the server's file
 * descriptors. Real agent turns (the scripted model has the real CLI run Bash) on every sandbox backend this host has;
 * the platform runs in this process, so its descriptors are this process's.
 */
const backends: Array<{ name: string; env: Record<string, string>; skip: string | null }> = [
  { name: 'local', env: {}, skip: null },
  {
    name: 'docker (runc)',
    env: { AGENTYARD_SANDBOX: 'docker', AGENTYARD_DOCKER_RUNTIME: 'runc', AGENTYARD_SANDBOX_IMAGE: testImage, AGENTYARD_SANDBOX_POOL_SIZE: '1' },
    skip: await dockerUnavailable('runc', process.env),
  },
  {
    name: 'docker (runsc)',
    env: { AGENTYARD_SANDBOX: 'docker', AGENTYARD_DOCKER_RUNTIME: 'runsc', AGENTYARD_SANDBOX_IMAGE: testImage },
    skip: await dockerUnavailable('runsc', process.env),
  },
];

const perSandboxCap = 128;
const floodSeconds = 10;
/** Flooding processes, each holding up to `heldPerProcess` connections: far more than the cap, under their own 1024. */
const floodProcesses = 3;
const heldPerProcess = 600;

/**
 * Opens connections to the gateway's socket (bound into every sandbox at the same path) and holds them without
 * sending anything, reopening what the gateway closes, for `seconds`. A connection the gateway answered with 429 or
 * 503 counts as refused; one it closed without a word (after its idle timeout) as closed.
 */
const floodScript = `
import select, socket, sys, time
path, seconds, most = '/run/agentyard/gateway.sock', float(sys.argv[1]), int(sys.argv[2])
end = time.time() + seconds
held, poller = {}, select.poll()
tried = refused = closed = failed = peak = 0
while time.time() < end:
    for _ in range(25):
        if len(held) >= most:
            break
        tried += 1
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect(path)
        except OSError:
            failed += 1
            continue
        s.setblocking(False)
        held[s.fileno()] = s
        poller.register(s, select.POLLIN)
    peak = max(peak, len(held))
    for fd, _ in poller.poll(50):
        s = held.pop(fd)
        poller.unregister(fd)
        try:
            data = s.recv(256)
        except OSError:
            data = b''
        if data.startswith(b'HTTP/1.1 429') or data.startswith(b'HTTP/1.1 503'):
            refused += 1
        else:
            closed += 1
        s.close()
    time.sleep(0.05)
print('TRIED=%d REFUSED=%d CLOSED=%d FAILED=%d PEAK=%d' % (tried, refused, closed, failed, peak))
`;

const floodCommand = [
  `cat > /tmp/flood.py <<'PY'${floodScript}PY`,
  `for i in $(seq ${floodProcesses}); do python3 /tmp/flood.py ${floodSeconds} ${heldPerProcess} > /tmp/flood.$i 2>&1 & done; wait`,
  'cat /tmp/flood.[0-9]*',
  `awk '{for (i = 1; i <= NF; i++) { split($i, kv, "="); total[kv[1]] += kv[2] }} END {for (k in total) print "FLOOD_" k "=" total[k]}' /tmp/flood.[0-9]*`,
].join('\n');

/** The descriptors this process (the server) holds open right now. */
const openDescriptors = (): number => readdirSync('/proc/self/fd').length;

for (const backend of backends) {
  describe.skipIf(backend.skip !== null)(`a descriptor flood on the ${backend.name} backend${backend.skip ? ` (skipped: ${backend.skip})` : ''}`, () => {
    let test: TestPlatform;
    let prober: SandboxProber;
    let alice: ApiClient;
    let bob: ApiClient;

    const newConversation = async (client: ApiClient, title: string): Promise<string> => {
      const response = await client.request('POST', '/api/conversations', { title });
      expect(response.status).toBe(201);
      return response.body.id as string;
    };

    beforeAll(async () => {
      test = await startTestPlatform({ env: { ...backend.env, AGENTYARD_GATEWAY_MAX_CONNECTIONS: String(perSandboxCap) } });
      prober = createSandboxProber(test.model);
      prober.install();
      alice = await test.api.registerWithToken(`alice-${randomBytes(3).toString('hex')}@example.com`);
      bob = await test.api.registerWithToken(`bob-${randomBytes(3).toString('hex')}@example.com`);
    });
    afterAll(() => test?.close());

    it('gives every process in the sandbox an open-file limit of 1024 that it cannot raise', async () => {
      const conversation = await newConversation(alice, 'limits');
      const probe = await prober.run(
        alice,
        conversation,
        [
          `python3 -c 'import resource; print("NOFILE=%d:%d" % resource.getrlimit(resource.RLIMIT_NOFILE))'`,
          // Every process the sandbox can see: its init, the gateway bridge, the CLI, this shell.
          `echo "ALL=$(cat /proc/[0-9]*/limits 2>/dev/null | awk '/^Max open files/ {print $4 ":" $5}' | sort -u | tr '\\n' ' ')"`,
          '(ulimit -Hn 4096) 2>/dev/null && echo RAISED=yes || echo RAISED=no',
        ].join('\n'),
      );
      expect(marker(probe.output, 'NOFILE')).toBe('1024:1024');
      expect(marker(probe.output, 'ALL').trim()).toBe('1024:1024');
      expect(marker(probe.output, 'RAISED')).toBe('no');
    });

    it('refuses a sandbox’s connection flood past its cap while the server’s descriptors stay bounded and another user’s new sandbox completes a turn', async () => {
      const flooder = await newConversation(alice, 'flood');
      await prober.run(alice, flooder, 'echo READY=1');
      const before = openDescriptors();

      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, openDescriptors())), 100);
      try {
        const flooding = prober.run(alice, flooder, floodCommand, { timeoutMs: 120_000, commandTimeoutMs: 120_000 });
        flooding.catch(() => undefined);
        // The flood is under way once the sandbox holds its cap's worth of connections.
        const deadline = Date.now() + 60_000;
        while (openDescriptors() < before + perSandboxCap / 2) {
          if (Date.now() > deadline) throw new Error(`the flood never started: ${openDescriptors()} descriptors, ${before} before`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }

        // Another user starts a new conversation (a new sandbox) and completes a turn while the flood goes on.
        const startedAt = performance.now();
        const neighbour = await newConversation(bob, 'neighbour');
        const turn = await prober.run(bob, neighbour, 'echo NEIGHBOUR=alive', { timeoutMs: 90_000 }).catch(async (error: unknown) => {
          // Say what the turn ran into, not only that it failed.
          const events = await bob.readEvents(neighbour, { until: (all) => all.some((event) => event.event === 'turn.ended'), timeoutMs: 5_000 }).catch(() => []);
          const told = events.filter((event) => event.event === 'error' || event.event === 'turn.ended').map((event) => JSON.stringify(event.data));
          throw new Error(`${error instanceof Error ? error.message : String(error)}\n${told.join('\n')}`);
        });
        const neighbourMs = performance.now() - startedAt;
        expect(marker(turn.output, 'NEIGHBOUR')).toBe('alive');

        const flood = await flooding;
        const tried = Number(marker(flood.output, 'FLOOD_TRIED'));
        const refused = Number(marker(flood.output, 'FLOOD_REFUSED'));
        const closed = Number(marker(flood.output, 'FLOOD_CLOSED'));
        const failed = Number(marker(flood.output, 'FLOOD_FAILED'));
        clearInterval(sampler);

        // Back down once the flood is over (the two sandboxes stay).
        const settleBy = Date.now() + 30_000;
        while (openDescriptors() > before + 100 && Date.now() < settleBy) await new Promise((resolve) => setTimeout(resolve, 200));
        const after = openDescriptors();
        console.log(
          `[${backend.name}] flood of ${floodProcesses}×${heldPerProcess} idle connections for ${floodSeconds} s: ${tried} tried, ${refused} refused (429/503), ` +
            `${closed} closed idle, ${failed} failed to connect; server descriptors ${before} before, ${peak} at most, ${after} after; ` +
            `another user's new conversation and turn: ${Math.round(neighbourMs)} ms`,
        );
        expect(tried).toBeGreaterThan(perSandboxCap * 2);
        expect(refused).toBeGreaterThan(0);
        // Accepted connections that never sent a request were closed by the gateway (after 5 s), not held to the end.
        expect(closed).toBeGreaterThan(0);
        // One sandbox's cap, plus a generous allowance for the neighbour's new sandbox and this test's own clients;
        // without the cap the flood alone would hold every connection it opened (up to 1800).
        expect(peak - before, `server descriptors: ${before} before, ${peak} at most`).toBeLessThan(perSandboxCap + 300);
        expect(after - before, `server descriptors: ${before} before, ${after} after`).toBeLessThanOrEqual(100);
      } finally {
        clearInterval(sampler);
      }
    });
  });
}
