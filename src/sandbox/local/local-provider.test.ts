import { randomInt } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupV2Required, skipWithoutCgroups } from '../../../test/support/limit-guards.ts';
import type { Sandbox, SandboxSpec } from '../../core/sandbox.ts';
import { createHostCgroups } from '../cgroups.ts';
import { describeSandboxContract, startTestGateway, type TestGateway } from '../sandbox.contract.ts';
import { createLocalProvider, type LocalProvider, type LocalSandbox } from './index.ts';

const claudeBinary = fileURLToPath(new URL('../../../node_modules/@anthropic-ai/claude-code/bin/claude.exe', import.meta.url));
const limits = { memoryMb: 512, cpus: 1, pids: 128 };
/** Bound of the waits below: only catches a hang (the cgroup v2 lane's User-mode Linux guest is very slow). */
const hangMs = 30_000;

describe('LocalProvider', () => {
  let dataDir: string;
  let gateway: TestGateway;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-local-'));
    gateway = await startTestGateway();
  });

  afterAll(async () => {
    await gateway?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  describeSandboxContract('local', () => createLocalProvider({ dataDir: path.join(dataDir, 'contract'), claudeBinary, workspaceDiskMb: 64 }));

  describe('on this host', () => {
    let provider: LocalProvider;
    const spec = (workspaceId: string, overrides: Partial<SandboxSpec> = {}): SandboxSpec => ({
      workspaceId,
      limits,
      gatewaySocket: gateway.socketPath,
      ...overrides,
    });

    beforeAll(() => {
      provider = createLocalProvider({ dataDir: path.join(dataDir, 'local'), claudeBinary });
    });

    afterAll(async () => {
      await provider.close();
    });

    // How fast: bench/sandbox.ts. Here only a bound that catches a hang.
    it('acquires and releases a sandbox again and again without hanging', async () => {
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const startedAt = performance.now();
        const sandbox = await provider.acquire(spec('latency'));
        expect(performance.now() - startedAt).toBeLessThan(10_000);
        await sandbox.release();
      }
    });

    it('runs sandbox processes as the unprivileged host uid and gives it the workspace', async () => {
      const sandbox = await provider.acquire(spec('host-uid'));
      try {
        const marker = uniqueSeconds();
        const child = sandbox.exec(['sleep', marker]);
        const [hostPid] = await waitForHostProcess(`sleep\0${marker}`);
        const status = await readFile(`/proc/${hostPid}/status`, 'utf8');
        expect(status).toMatch(/^Uid:\s+64000\s+64000\s+64000\s+64000$/m);
        expect(status).toMatch(/^Gid:\s+64000\s+64000\s+64000\s+64000$/m);
        expect(status).toMatch(/^CapEff:\s+0+$/m);
        expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
        child.kill('SIGKILL');
        await child.exited;
        const workspace = await stat(path.join(dataDir, 'local', 'workspaces', 'host-uid', 'workspace'));
        expect([workspace.uid, workspace.gid]).toEqual([64000, 64000]);
      } finally {
        await sandbox.release();
      }
    });

    it('reports no disk for workspaces without a size limit, and writes them as plain directories', async () => {
      const sandbox = await provider.acquire(spec('no-disk-limit'));
      try {
        expect(await sandbox.pressure()).toEqual({ oomKills: 0, disk: null });
        const mounts = await readFile('/proc/self/mountinfo', 'utf8');
        expect(mounts).not.toContain(path.join(dataDir, 'local', 'workspaces', 'no-disk-limit'));
        expect((await provider.check()).find((check) => check.name === 'limits.disk')).toMatchObject({ ok: true, detail: expect.stringMatching(/^off/) });
      } finally {
        await sandbox.release();
      }
    });

    it('shows the sandbox no host path in its pid 1 command line, and mounts its root read-only', async () => {
      const sandbox = await provider.acquire(spec('host-paths'));
      try {
        const cmdline = await run(sandbox, ['cat', '/proc/1/cmdline']);
        expect(cmdline).toContain('bwrap');
        expect(cmdline).not.toContain(dataDir);
        expect(cmdline).not.toContain('host-paths');
        expect(cmdline).not.toContain(gateway.socketPath);
        const mounts = await run(sandbox, ['cat', '/proc/self/mounts']);
        const root = mounts.split('\n').find((line) => line.split(' ')[1] === '/');
        expect(root?.split(' ')[3]?.split(',')).toContain('ro');
        const workspace = mounts.split('\n').find((line) => line.split(' ')[1] === '/workspace');
        expect(workspace?.split(' ')[3]?.split(',')).toContain('rw');
      } finally {
        await sandbox.release();
      }
    });

    it('puts every process of the sandbox in its cgroup with its limits, and removes the cgroup on release', async (context) => {
      const enforcement = await provider.limitEnforcement();
      skipWithoutCgroups(context, enforcement.pids === 'none' || enforcement.pids === 'rlimit-nproc', 'no writable pids cgroup on this host');
      const sandbox = await provider.acquire(spec('cgroup'));
      context.onTestFinished(() => sandbox.release());
      const marker = uniqueSeconds();
      const child = sandbox.exec(['sleep', marker]);
      const [hostPid] = await waitForHostProcess(`sleep\0${marker}`);
      const membership = await readFile(`/proc/${hostPid}/cgroup`, 'utf8');
      expect(membership).toContain(`/agentyard/${sandbox.id}`);
      const { version, parents } = await createHostCgroups().detect();
      if (cgroupV2Required) expect(membership).toBe(`0::/agentyard/${sandbox.id}\n`);
      const limit = (controller: 'memory' | 'pids' | 'cpu', file: string) =>
        readFile(path.join(parents[controller]!, sandbox.id, file), 'utf8').then((text) => text.trim());
      if (version === 'v1') {
        expect(await limit('memory', 'memory.limit_in_bytes')).toBe(String(512 * 1024 * 1024));
        expect(await limit('pids', 'pids.max')).toBe('128');
        expect(await limit('cpu', 'cpu.cfs_quota_us')).toBe('100000');
      } else {
        expect(await limit('memory', 'memory.max')).toBe(String(512 * 1024 * 1024));
        expect(await limit('pids', 'pids.max')).toBe('128');
        expect(await limit('cpu', 'cpu.max')).toBe('100000 100000');
      }
      const cgroupDirectories = (await readFile('/proc/self/mountinfo', 'utf8'))
        .split('\n')
        .filter((line) => / - cgroup2? /.test(line))
        .map((line) => path.join(line.split(' ')[4]!, 'agentyard', sandbox.id));
      await sandbox.release();
      await child.exited;
      for (const directory of cgroupDirectories) expect(await stat(directory).catch(() => null), directory).toBeNull();
    });

    it('pauses with the cgroup freezer: a paused sandbox uses no CPU and resumes with its processes intact', async (context) => {
      const support = await createHostCgroups().detect();
      skipWithoutCgroups(context, !support.freezer, 'no writable cgroup freezer on this host');
      if (cgroupV2Required) expect(support).toMatchObject({ version: 'v2', freezer: '/sys/fs/cgroup/agentyard' });
      const sandbox = await provider.acquire(spec('paused'));
      context.onTestFinished(() => sandbox.release());
      const marker = uniqueSeconds();
      const busy = sandbox.exec(['sh', '-c', `while :; do :; done; sleep ${marker}`]);
      const [hostPid] = await waitForHostProcess(`sh\0-c\0while`);
      const cpuTicks = async () => {
        const fields = (await readFile(`/proc/${hostPid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
        return Number(fields[11]) + Number(fields[12]);
      };
      expect(await sandbox.pause()).toBe(true);
      expect(await sandbox.pause()).toBe(true);
      const frozenAt = await cpuTicks();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await cpuTicks()).toBe(frozenAt);
      await sandbox.resume();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await cpuTicks()).toBeGreaterThan(frozenAt);
      expect(await run(sandbox, ['echo', 'thawed'])).toBe('thawed\n');
      // Release kills a paused sandbox too.
      expect(await sandbox.pause()).toBe(true);
      await sandbox.release();
      expect(await within(busy.exited, hangMs)).toMatchObject({ signal: 'SIGKILL' });
    });

    it('reports its limit mechanisms and what it needs in check()', async () => {
      const checks = await provider.check();
      expect(checks.map((check) => check.name)).toEqual([
        'root',
        'bubblewrap',
        'socat',
        'nsenter',
        'setpriv',
        'claude binary',
        'limits.memory',
        'limits.pids',
        'limits.cpu',
        'limits.disk',
      ]);
      expect(checks.filter((check) => !check.ok && !check.fix)).toEqual([]);
      if (cgroupV2Required) {
        for (const limit of ['memory', 'pids', 'cpu']) {
          expect(checks.find((check) => check.name === `limits.${limit}`)).toMatchObject({ ok: true, detail: 'cgroup-v2 under /sys/fs/cgroup/agentyard' });
        }
      }
      const broken = createLocalProvider({ dataDir: path.join(dataDir, 'broken'), claudeBinary: '/nonexistent/claude' });
      const claude = (await broken.check()).find((check) => check.name === 'claude binary');
      expect(claude).toMatchObject({ ok: false, fix: expect.stringContaining('npm install') });
      await expect(broken.acquire(spec('broken'))).rejects.toMatchObject({ code: 'SANDBOX_UNAVAILABLE' });
    });

    it('falls back to rlimits when cgroups are not used', async () => {
      // Its own uid: RLIMIT_NPROC counts every process of the uid on the host, other tests' sandboxes (and containers) included.
      const fallback = createLocalProvider({ dataDir: path.join(dataDir, 'fallback'), claudeBinary, cgroups: false, sandboxUid: 64_999 });
      expect(await fallback.limitEnforcement()).toEqual({ memory: 'none', cpu: 'none', pids: 'rlimit-nproc' });
      const checks = await fallback.check();
      expect(checks.find((check) => check.name === 'limits.pids')).toMatchObject({ ok: false, detail: expect.stringContaining('rlimit-nproc') });
      const sandbox = await fallback.acquire(spec('fallback'));
      const result = await run(sandbox, ['cat', '/proc/self/limits']);
      expect(result).toMatch(/^Max processes\s+128\s+128\s+processes\s*$/m);
      expect(result).toMatch(/^Max core file size\s+0\s+0\s+bytes\s*$/m);
      await fallback.close();
    });

    it('frees a sandbox whose init died, so that its workspace can be acquired again', async () => {
      const sandbox = (await provider.acquire(spec('init-died'))) as LocalSandbox;
      process.kill(sandbox.initPid, 'SIGKILL');
      await waitUntil(() => {
        try {
          sandbox.exec(['true']).kill('SIGKILL');
          return false;
        } catch (error) {
          return (error as { code?: string }).code === 'SANDBOX_UNAVAILABLE';
        }
      });
      const again = await waitUntilResolved(() => provider.acquire(spec('init-died')));
      expect(await run(again, ['echo', 'back'])).toBe('back\n');
      await again.release();
    });

    it('refuses a second live sandbox for the same workspace', async () => {
      const sandbox = await provider.acquire(spec('single'));
      await expect(provider.acquire(spec('single'))).rejects.toMatchObject({ code: 'CONFLICT' });
      await sandbox.release();
      const again = await provider.acquire(spec('single'));
      await again.release();
    });

    it('rejects invalid specs and a missing gateway socket', async () => {
      await expect(provider.acquire(spec('../escape'))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(provider.acquire(spec('limits', { limits: { ...limits, memoryMb: 0 } }))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(provider.acquire(spec('socket', { gatewaySocket: path.join(dataDir, 'missing.sock') }))).rejects.toMatchObject({
        code: 'SANDBOX_UNAVAILABLE',
      });
    });

    it('rejects environment variables that would reach the root-run launcher', async () => {
      const sandbox = await provider.acquire(spec('loader-env'));
      expect(() => sandbox.exec(['true'], { env: { LD_PRELOAD: '/workspace/evil.so' } })).toThrow(
        expect.objectContaining({ code: 'BAD_REQUEST' }),
      );
      await sandbox.release();
    });

    it('leaves nothing behind when acquire is aborted', async () => {
      const controller = new AbortController();
      const pending = provider.acquire(spec('aborted'), controller.signal);
      setTimeout(() => controller.abort(new Error('caller gave up')), 5);
      await expect(pending).rejects.toThrow('caller gave up');
      expect(await readdir(path.join(dataDir, 'local', 'sandboxes'))).toEqual([]);
      const sandbox = await provider.acquire(spec('aborted'));
      await sandbox.release();
    });
  });
});

async function run(sandbox: Sandbox, argv: string[]): Promise<string> {
  const child = sandbox.exec(argv);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await child.exited;
  return output;
}

async function waitForHostProcess(commandLine: string): Promise<number[]> {
  const deadline = Date.now() + hangMs;
  for (;;) {
    const found: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const text = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      // The sleep itself, not the nsenter/setpriv command lines that carry the same arguments.
      if (text.startsWith(commandLine)) found.push(Number(entry));
    }
    if (found.length > 0) return found;
    if (Date.now() > deadline) throw new Error(`no host process runs ${commandLine}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function waitUntil(condition: () => boolean, timeoutMs = hangMs): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Retries while the previous sandbox of the workspace is still being freed (CONFLICT). */
async function waitUntilResolved<T>(attempt: () => Promise<T>, timeoutMs = hangMs): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if ((error as { code?: string }).code !== 'CONFLICT' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** A sleep duration no other process uses, so that the process can be found by its command line. */
function uniqueSeconds(): string {
  return `${randomInt(700, 800)}.${randomInt(1_000_000)}`;
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms))]);
}
