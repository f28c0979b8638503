import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox, SandboxSpec } from '../../core/sandbox.ts';
import { describeSandboxContract, startTestGateway, type TestGateway } from '../sandbox.contract.ts';
import { connectDocker } from './docker-client.ts';
import { dockerUnavailable, testImage } from './docker-test-support.ts';
import { createDockerProvider, type DockerProvider } from './index.ts';

const limits = { memoryMb: 512, cpus: 1, pids: 128 };
const unavailable = {
  runc: await dockerUnavailable('runc', process.env),
  runsc: await dockerUnavailable('runsc', process.env),
};

for (const runtime of ['runc', 'runsc'] as const) {
  describe.skipIf(unavailable[runtime] !== null)(`DockerProvider (${runtime})${unavailable[runtime] ? `: skipped, ${unavailable[runtime]}` : ''}`, () => {
    let dataDir: string;

    beforeAll(async () => {
      dataDir = await mkdtemp(path.join(tmpdir(), `agentyard-docker-${runtime}-`));
    });

    afterAll(async () => {
      await rm(dataDir, { recursive: true, force: true });
    });

    describeSandboxContract(`docker (${runtime})`, () => createDockerProvider({ dataDir: path.join(dataDir, 'contract'), image: testImage, runtime, workspaceDiskMb: 64 }), {
      ...(runtime === 'runsc' ? { wholeSandboxLimits: 'gVisor ends the whole sandbox at its memory or pids limit; test/e2e/hostile.test.ts tests exactly that' } : {}),
    });

    describe('on this host', () => {
      let provider: DockerProvider;
      let gateway: TestGateway;
      const spec = (workspaceId: string, overrides: Partial<SandboxSpec> = {}): SandboxSpec => ({
        workspaceId,
        limits,
        gatewaySocket: gateway.socketPath,
        labels: { suite: 'docker-provider' },
        ...overrides,
      });

      beforeAll(async () => {
        gateway = await startTestGateway();
        provider = createDockerProvider({ dataDir: path.join(dataDir, 'host'), image: testImage, runtime, poolSize: 1, workspaceDiskMb: 64 });
      });

      afterAll(async () => {
        await provider?.close();
        await gateway?.close();
      });

      it('hardens the container: no capabilities, no new privileges, read-only root, no network, limits, capped logs', async () => {
        const sandbox = await provider.acquire(spec('hardened'));
        try {
          const docker = await connectDocker(process.env.DOCKER_HOST);
          const info = await docker.getContainer((sandbox as unknown as { containerId: string }).containerId).inspect();
          const host = info.HostConfig;
          expect(host.CapDrop).toEqual(['ALL']);
          expect(host.SecurityOpt).toContain('no-new-privileges:true');
          expect(host.SecurityOpt?.some((option: string) => option.startsWith('seccomp='))).toBe(false);
          expect(host.ReadonlyRootfs).toBe(true);
          expect(host.NetworkMode).toBe('none');
          expect(host.Privileged).toBe(false);
          expect(host.Memory).toBe(512 * 1024 * 1024);
          expect(host.MemorySwap).toBe(512 * 1024 * 1024);
          expect(host.NanoCpus).toBe(1e9);
          expect(host.PidsLimit).toBeGreaterThanOrEqual(128);
          expect(host.LogConfig).toMatchObject({ Config: { 'max-size': '1m' } });
          expect(info.Config.User).toBe('64000:64000');
          expect(host.Runtime).toBe(runtime);
          const sources = info.Mounts.map((mount) => mount.Source);
          expect(sources.some((source) => source.includes('docker.sock'))).toBe(false);
          // Only the workspace, the agent's home and the gateway socket (a pooled container: the directory it is mounted in).
          const allowed = ['/workspace', '/home/agent', '/run/agentyard/gateway.sock', '/run/agentyard'];
          expect(info.Mounts.map((mount) => mount.Destination).filter((target) => !allowed.includes(target))).toEqual([]);
          expect(info.Config.Labels['dev.agentyard.label.suite']).toBe('docker-provider');
        } finally {
          await sandbox.release();
        }
      });

      it('runs a process on a terminal of the given size, and resizes it', async () => {
        const sandbox = await provider.acquire(spec('terminal'));
        try {
          const child = sandbox.exec(['sh', '-c', 'stty size; tty; read line; stty size'], { tty: { cols: 100, rows: 30 } });
          let output = '';
          child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
          await waitFor(async () => output.includes('/dev/pts/'));
          expect(output).toContain('30 100');
          child.resize(120, 40);
          const terminal = /\/dev\/pts\/\d+/.exec(output)![0];
          await waitFor(async () => (await run(sandbox, ['stty', '-F', terminal, 'size'])).trim() === '40 120');
          child.stdin!.write('\n');
          expect(await child.exited).toEqual({ code: 0, signal: null });
          expect(output).toContain('40 120');
        } finally {
          await sandbox.release();
        }
      });

      it('stops a workspace at its size limit with ENOSPC, leaving /tmp and other workspaces alone', async () => {
        const full = await provider.acquire(spec('disk-full'));
        const other = await provider.acquire(spec('disk-other'));
        try {
          const fill = await run(full, ['sh', '-c', 'head -c 200000000 /dev/zero 2>/tmp/error > /workspace/fill; echo status=$?; cat /tmp/error']);
          expect(fill).toContain('No space left on device');
          expect(fill).toMatch(/status=[1-9]/);
          expect((await stat(path.join(dataDir, 'host', 'workspaces', 'disk-full', 'workspace', 'fill'))).size).toBeLessThan(64 * 1024 * 1024);
          expect(await run(full, ['sh', '-c', 'echo ok > /tmp/ok && cat /tmp/ok'])).toBe('ok\n');
          expect(await run(other, ['sh', '-c', 'head -c 20000000 /dev/zero > /workspace/fits && echo fits'])).toBe('fits\n');
          const check = (await provider.check()).find((entry) => entry.name === 'limits.disk');
          expect(check).toMatchObject({ ok: true });
        } finally {
          await full.release();
          await other.release();
        }
        // The files survive the sandbox, and removing the workspace frees its disk.
        expect((await provider.workspaceFiles('disk-full').list('')).entries.map((entry) => entry.name)).toContain('fill');
        await provider.removeWorkspace('disk-full');
        await provider.removeWorkspace('disk-other');
      });

      it('pauses every process and resumes them intact', async () => {
        const sandbox = await provider.acquire(spec('pause'));
        // The counter lives in the workspace, so the host can read it while the container is frozen.
        const counterFile = path.join(dataDir, 'host', 'workspaces', 'pause', 'workspace', 'count');
        const count = async (): Promise<number> => Number((await readFile(counterFile, 'utf8').catch(() => '0')).trim() || '0');
        try {
          const child = sandbox.exec(['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /workspace/count.tmp; mv /workspace/count.tmp /workspace/count; sleep 0.05; done']);
          await waitFor(async () => (await count()) > 0);
          expect(await sandbox.pause()).toBe(true);
          expect(await sandbox.pause()).toBe(true);
          // Frozen: the loop makes no progress at all while paused.
          const paused = await count();
          await new Promise((resolve) => setTimeout(resolve, 1000));
          expect(await count()).toBe(paused);
          await sandbox.resume();
          await waitFor(async () => (await count()) > paused);
          child.kill('SIGKILL');
          await child.exited;
        } finally {
          await sandbox.release();
        }
      });

      // How fast a claim is: bench/sandbox.ts. Here: the claim takes the pooled container, and does not hang.
      it.skipIf(runtime === 'runsc')('claims the warm container, mounting the workspace into it', async () => {
        await provider.warmUp(limits);
        expect(Object.values(provider.poolStatus())).toEqual([1]);
        const docker = await connectDocker(process.env.DOCKER_HOST);
        const installation = createHash('sha256').update(path.resolve(path.join(dataDir, 'host'))).digest('hex').slice(0, 16);
        const pooled = await docker.listContainers({ filters: { label: [`dev.agentyard.installation=${installation}`, 'dev.agentyard.role=pool'] } });
        expect(pooled).toHaveLength(1);
        const warmWorkspace = path.join(dataDir, 'host', 'workspaces', 'warm', 'workspace');
        await mkdir(warmWorkspace, { recursive: true });
        await writeFile(path.join(warmWorkspace, 'canary.txt'), 'warm canary');
        const startedAt = performance.now();
        const sandbox = await provider.acquire(spec('warm'));
        const claimMs = performance.now() - startedAt;
        try {
          expect((sandbox as unknown as { containerId: string }).containerId).toBe(pooled[0]!.Id);
          expect(claimMs).toBeLessThan(5000);
          expect(await run(sandbox, ['cat', '/workspace/canary.txt'])).toBe('warm canary');
          const gatewayReply = await run(sandbox, ['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/4180; printf 'GET /v1/warm HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3`]);
          expect(gatewayReply).toContain('gateway saw GET /v1/warm');
          await run(sandbox, ['sh', '-c', 'echo written > /workspace/from-warm.txt; echo home > ~/home.txt']);
        } finally {
          await sandbox.release();
        }
        // The workspace stays on the host; the next (pooled) sandbox of another conversation sees none of it.
        expect((await provider.workspaceFiles('warm').read('from-warm.txt')).toString()).toBe('written\n');
        await provider.warmUp(limits);
        const other = await provider.acquire(spec('warm-other'));
        try {
          expect(await run(other, ['sh', '-c', 'ls -A /workspace ~; find / -name canary.txt -o -name from-warm.txt 2>/dev/null'])).toBe('/home/agent:\n\n/workspace:\n');
        } finally {
          await other.release();
        }
      });

      it('removes containers a previous server left behind, and adopts its warm ones', async () => {
        const leftDir = path.join(dataDir, 'left');
        const first = createDockerProvider({ dataDir: leftDir, image: testImage, runtime, poolSize: 1 });
        const orphan = await first.acquire(spec('orphan'));
        if (runtime === 'runc') await first.warmUp(limits);
        // The server dies: nothing is released.
        const docker = await connectDocker(process.env.DOCKER_HOST);
        const installation = (await docker.getContainer((orphan as unknown as { containerId: string }).containerId).inspect()).Config.Labels['dev.agentyard.installation'];
        const warm = await docker.listContainers({ all: true, filters: { label: [`dev.agentyard.installation=${installation}`, 'dev.agentyard.role=pool'] } });
        expect(warm).toHaveLength(runtime === 'runc' ? 1 : 0);
        const second = createDockerProvider({ dataDir: leftDir, image: testImage, runtime, poolSize: 1 });
        const fresh = await second.acquire(spec('orphan'));
        const freshId = (fresh as unknown as { containerId: string }).containerId;
        const left = await docker.listContainers({ all: true, filters: { label: [`dev.agentyard.installation=${installation}`] } });
        const ids = left.map((container) => container.Id);
        expect(ids).not.toContain((orphan as unknown as { containerId: string }).containerId);
        expect(ids).toContain(freshId);
        // The warm container the first server left is adopted into the new pool, and the next conversation claims it.
        if (runtime === 'runc') expect(freshId).toBe(warm[0]?.Id);
        await second.close();
        expect(await docker.listContainers({ all: true, filters: { label: [`dev.agentyard.installation=${installation}`] } })).toEqual([]);
      });

      it('leaves a live replica’s containers to it at start-up, and removes those of a replica that is gone', async () => {
        const sharedDir = path.join(dataDir, 'replicas');
        const gone = new Set<string>();
        const asReplica = (id: string): DockerProvider =>
          createDockerProvider({ dataDir: sharedDir, image: testImage, runtime, sharedDataDir: true, replica: { id, replicaGone: async (other) => gone.has(other) } });
        const docker = await connectDocker(process.env.DOCKER_HOST);
        const containerOf = (sandbox: Sandbox): string => (sandbox as unknown as { containerId: string }).containerId;
        const running = async (id: string): Promise<boolean> => (await docker.getContainer(id).inspect().catch(() => null))?.State.Running === true;

        const r1 = asReplica('r1');
        const ofR1 = await r1.acquire(spec('of-r1'));
        // r2 starts (its sweep runs with its first acquire) while r1 lives: r1's sandbox is untouched.
        const r2 = asReplica('r2');
        const ofR2 = await r2.acquire(spec('of-r2'));
        expect(await running(containerOf(ofR1))).toBe(true);
        expect((await docker.getContainer(containerOf(ofR1)).inspect()).Config.Labels['dev.agentyard.replica']).toBe('r1');

        // r1 dies (nothing released) and is known gone: the next replica to start removes its container, not r2's.
        gone.add('r1');
        const r3 = asReplica('r3');
        const ofR3 = await r3.acquire(spec('of-r3'));
        await waitFor(async () => !(await running(containerOf(ofR1))));
        expect(await docker.getContainer(containerOf(ofR1)).inspect().catch(() => null)).toBeNull();
        expect(await running(containerOf(ofR2))).toBe(true);
        await ofR3.release();
        await ofR2.release();
        await r3.close();
        await r2.close();
      });
    });
  });
}

async function run(sandbox: Sandbox, argv: string[]): Promise<string> {
  const child = sandbox.exec(argv);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await child.exited;
  return output;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
