import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutCgroups, skipWithoutLimit } from '../../test/support/limit-guards.ts';
import {
  sandboxPaths,
  type BackendCheck,
  type ExecOptions,
  type Sandbox,
  type SandboxLimits,
  type SandboxProvider,
} from '../core/sandbox.ts';

/**
 * The behaviour every SandboxProvider must show, run against real sandboxes. A backend's test file
 * calls `describeSandboxContract('docker', () => createDockerProvider(...))`.
 *
 * The suite needs /bin/sh, bash, coreutils and find inside the sandbox, and `claude` on PATH. Limit
 * cases are skipped (with the reason) when the backend's check() reports `limits.memory`,
 * `limits.pids` or `limits.disk` as not ok.
 */
export interface ContractOptions {
  /**
   * Set when the backend, by design, ends the whole sandbox at its memory or pids limit rather than one process
   * (gVisor): the per-process cases are then skipped with this reason, decided here and not by the backend's checks.
   */
  wholeSandboxLimits?: string;
}

export function describeSandboxContract(name: string, makeProvider: () => SandboxProvider | Promise<SandboxProvider>, options: ContractOptions = {}): void {
  describe(`${name} sandbox contract`, () => {
    const runId = randomBytes(4).toString('hex');
    const defaultLimits: SandboxLimits = { memoryMb: 1024, cpus: 1, pids: 256 };
    let provider: SandboxProvider;
    let checks: BackendCheck[];
    let gateway: TestGateway;
    let shared: Sandbox;
    const workspaces = new Set<string>();
    const sandboxes: Sandbox[] = [];

    const acquire = async (workspace: string, limits: Partial<SandboxLimits> = {}): Promise<Sandbox> => {
      const workspaceId = `contract-${runId}-${workspace}`;
      workspaces.add(workspaceId);
      const sandbox = await provider.acquire({
        workspaceId,
        limits: { ...defaultLimits, ...limits },
        gatewaySocket: gateway.socketPath,
        labels: { suite: 'sandbox-contract' },
      });
      sandboxes.push(sandbox);
      return sandbox;
    };

    const skipUnlessEnforced = (context: { skip: (condition: boolean, note?: string) => void }, limit: string) => {
      const check = checks.find((candidate) => candidate.name === `limits.${limit}`);
      const note = `the backend does not enforce ${limit} limits here: ${check?.detail ?? 'no check reported'}`;
      // Memory and pids limits are cgroups' (AGENTYARD_TEST_CGROUP=v2 makes their absence a failure); disk is not.
      // Under AGENTYARD_TEST_LIMITS=required, any of them missing fails.
      if (limit === 'disk') skipWithoutLimit(context, !check?.ok, note);
      else skipWithoutCgroups(context, !check?.ok, note);
    };

    beforeAll(async () => {
      provider = await makeProvider();
      checks = await provider.check();
      gateway = await startTestGateway();
      shared = await acquire('shared');
    });

    afterAll(async () => {
      await Promise.allSettled(sandboxes.map((sandbox) => sandbox.release()));
      for (const workspaceId of workspaces) await provider?.removeWorkspace(workspaceId).catch(() => undefined);
      await provider?.close();
      await gateway?.close();
    });

    it('runs a command and reports its output and exit code', async () => {
      const echo = await run(shared, ['echo', 'hello sandbox']);
      expect(echo).toMatchObject({ code: 0, signal: null, stdout: 'hello sandbox\n' });
      const failing = await run(shared, ['sh', '-c', 'echo oops >&2; exit 3']);
      expect(failing).toMatchObject({ code: 3, stderr: 'oops\n' });
    });

    it('runs in the workspace unless given another working directory', async () => {
      expect((await run(shared, ['pwd'])).stdout).toBe(`${sandboxPaths.workspace}\n`);
      expect((await run(shared, ['pwd'], { cwd: '/tmp' })).stdout).toBe('/tmp\n');
    });

    it('pipes stdin to the process only when asked', async () => {
      const child = shared.exec(['cat'], { stdin: true });
      const output = collect(child.stdout);
      child.stdin!.end('line one\nline two\n');
      expect(await child.exited).toEqual({ code: 0, signal: null });
      expect(await output).toBe('line one\nline two\n');
      expect(await run(shared, ['cat'])).toMatchObject({ code: 0, stdout: '' });
    });

    it('gives the process exactly the environment it was given, plus PATH, HOME and USER', async () => {
      const given = { AGENTYARD_MARKER: `marker-${runId}`, WITH_SPACES: "a 'b'\nc", PWD: '/given/by/caller' };
      const result = await run(shared, ['/usr/bin/env', '-0'], { env: given });
      const env = Object.fromEntries(
        result.stdout
          .split('\0')
          .filter(Boolean)
          .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
      );
      expect(env).toMatchObject(given);
      expect(env.HOME).toBe(sandboxPaths.home);
      expect(env.PATH?.split(':')).toContain(sandboxPaths.bin);
      expect(Object.keys(env).sort()).toEqual(['AGENTYARD_MARKER', 'HOME', 'PATH', 'PWD', 'USER', 'WITH_SPACES']);
      const bare = await run(shared, ['/usr/bin/env']);
      expect(bare.stdout.split('\n').filter(Boolean).map((line) => line.split('=')[0]).sort()).toEqual(['HOME', 'PATH', 'USER']);
      // Nothing of the host's environment (this machine sets IS_SANDBOX, a server has ANTHROPIC_API_KEY) leaks in.
      const hostOnly = Object.keys(process.env).filter((key) => !['HOME', 'PATH', 'USER'].includes(key) && !(key in given));
      expect(hostOnly.length).toBeGreaterThan(0);
      expect(hostOnly.filter((key) => key in env)).toEqual([]);
    });

    it('runs commands as an unprivileged user without capabilities', async () => {
      const result = await run(shared, ['sh', '-c', 'id -u; id -g; grep CapEff /proc/self/status']);
      const [uid, gid, capabilities] = result.stdout.trim().split('\n');
      expect(Number(uid)).toBeGreaterThan(0);
      expect(Number(gid)).toBeGreaterThan(0);
      expect(capabilities).toMatch(/^CapEff:\s+0+$/);
    });

    it('keeps the system read-only and the workspace writable', async () => {
      const script = [
        'touch /usr/agentyard-probe 2>/dev/null && echo usr-writable',
        'touch /etc/agentyard-probe 2>/dev/null && echo etc-writable',
        'touch /agentyard-probe 2>/dev/null && echo root-writable',
        'touch /workspace/probe && echo workspace-writable',
        'touch /tmp/probe && echo tmp-writable',
      ].join('; ');
      const result = await run(shared, ['sh', '-c', script]);
      expect(result.stdout.trim().split('\n')).toEqual(['workspace-writable', 'tmp-writable']);
    });

    it('shares files between exec and readFile/writeFile, owned by the sandbox user', async () => {
      expect((await run(shared, ['sh', '-c', 'mkdir -p out && printf "from exec" > out/a.txt'])).code).toBe(0);
      expect((await shared.readFile('out/a.txt')).toString()).toBe('from exec');

      await shared.writeFile('in/deeper/b.txt', 'from host');
      const result = await run(shared, ['sh', '-c', 'cat in/deeper/b.txt; echo; stat -c %u in/deeper/b.txt in/deeper; id -u; echo more >> in/deeper/b.txt']);
      const [content, fileOwner, directoryOwner, uid] = result.stdout.trim().split('\n');
      expect(content).toBe('from host');
      expect(fileOwner).toBe(uid);
      expect(directoryOwner).toBe(uid);
      expect(result.code).toBe(0);
      await shared.writeFile('in/deeper/b.txt', Buffer.from('replaced'));
      expect((await shared.readFile('in/deeper/b.txt')).toString()).toBe('replaced');
    });

    it('confines readFile and writeFile to the workspace', async () => {
      const hostMarker = `/tmp/agentyard-escape-${runId}`;
      const links = `ln -sf /etc/passwd passwd-link; ln -sfn / root-link; ln -sfn /tmp tmp-link`;
      expect((await run(shared, ['sh', '-c', links])).code).toBe(0);
      for (const escape of ['../x', 'a/../../x', '/etc/passwd', 'passwd-link', 'root-link/etc/passwd', 'nul\0byte', 'x'.repeat(300)]) {
        await expect(shared.readFile(escape), escape).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      }
      for (const escape of ['../x', '/tmp/x', 'passwd-link', `root-link${hostMarker}`, `tmp-link/agentyard-escape-${runId}`]) {
        await expect(shared.writeFile(escape, 'pwned'), escape).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      }
      expect(existsSync(hostMarker)).toBe(false);
      await expect(shared.readFile('does-not-exist')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it("does not let one sandbox see another's workspace", async () => {
      const canary = `canary-${runId}`;
      await shared.writeFile(canary, 'secret');
      const other = await acquire('other');
      const search = `cat /workspace/${canary} 2>/dev/null; find / \\( -path /proc -o -path /sys -o -path /usr \\) -prune -o -name ${canary} -print 2>/dev/null`;
      expect((await run(other, ['sh', '-c', search])).stdout).toBe('');
      await expect(other.readFile(canary)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await other.release();
    });

    it('has no network: host listeners are unreachable and only loopback exists', async () => {
      const listener = await startTcpListener();
      try {
        const addresses = ['127.0.0.1', ...hostAddresses()];
        for (const address of addresses) {
          const probe = `exec 3<>/dev/tcp/${address}/${listener.port} && echo connected`;
          const result = await run(shared, ['timeout', '5', 'bash', '-c', probe]);
          expect(result.stdout, address).not.toContain('connected');
          expect(result.code, address).not.toBe(0);
        }
        expect(listener.connections).toBe(0);
      } finally {
        await listener.close();
      }
      const devices = await run(shared, ['cat', '/proc/net/dev']);
      const interfaces = devices.stdout
        .split('\n')
        .slice(2)
        .map((line) => line.split(':')[0]!.trim())
        .filter(Boolean);
      expect(interfaces).toEqual(['lo']);
    });

    it('reaches the gateway, and only the gateway, through gatewayUrl', async () => {
      const url = new URL(shared.gatewayUrl);
      expect(url.hostname).toBe('127.0.0.1');
      const request = [
        `exec 3<>/dev/tcp/${url.hostname}/${url.port}`,
        `printf 'GET /v1/ping HTTP/1.0\\r\\nHost: gateway\\r\\n\\r\\n' >&3`,
        'cat <&3',
      ].join('; ');
      const result = await run(shared, ['timeout', '5', 'bash', '-c', request]);
      expect(result.stdout).toContain('200 OK');
      expect(result.stdout).toContain(`gateway saw GET /v1/ping`);
      expect(gateway.requests).toContain('/v1/ping');
    });

    it('does not show host processes', async () => {
      const result = await run(shared, ['sh', '-c', 'for entry in /proc/[0-9]*; do echo "${entry#/proc/} $(cat $entry/comm 2>/dev/null)"; done']);
      const processes = result.stdout.trim().split('\n').map((line) => line.split(' '));
      const pids = processes.map(([pid]) => Number(pid));
      const names = processes.map(([, comm]) => comm);
      expect(pids.length).toBeLessThan(10);
      expect(names).not.toContain('node');
      expect(names.some((comm) => comm?.startsWith('vitest'))).toBe(false);
      if (process.pid > 20) expect(pids).not.toContain(process.pid);
    });

    it('kills the process and its process group on kill("SIGKILL")', async () => {
      const marker = uniqueSeconds();
      const child = shared.exec(['sh', '-c', `sleep ${marker} & echo started; sleep ${marker}`]);
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await waitFor(async () => output === 'started\n');
      child.kill('SIGKILL');
      const status = await within(child.exited, 10_000, 'exit after SIGKILL');
      expect(status.signal === 'SIGKILL' || status.code === 137).toBe(true);
      const left = await run(shared, ['sh', '-c', `cat /proc/[0-9]*/cmdline | tr '\\0' ' '`]);
      expect(left.stdout).not.toContain(`sleep ${marker}`);
    });

    it('delivers other signals to the process itself, which may handle them', async () => {
      const script = 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done';
      const child = shared.exec(['sh', '-c', script]);
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await waitFor(async () => output.includes('ready'));
      child.kill('SIGTERM');
      expect(await within(child.exited, 10_000, 'exit after SIGTERM')).toEqual({ code: 7, signal: null });
      expect(output).toBe('ready\ngot-term\n');
    });

    it.skipIf(options.wholeSandboxLimits !== undefined)(`enforces the memory limit by killing a process that allocates beyond it${options.wholeSandboxLimits ? ` (skipped: ${options.wholeSandboxLimits})` : ''}`, async (context) => {
      skipUnlessEnforced(context, 'memory');
      const sandbox = await acquire('memory', { memoryMb: 64 });
      // tail -c keeps the last 250 MB in memory: fine without a limit, killed under 64 MiB.
      const result = await run(sandbox, ['sh', '-c', 'head -c 300000000 /dev/zero | tail -c 250000000 > /dev/null; echo status=$?']);
      expect(result.stdout.trim()).toBe('status=137');
      expect((await run(sandbox, ['echo', 'still alive'])).stdout).toBe('still alive\n');
      // The kill is reported (some engines report it just after the process ended), and still after release.
      await waitFor(async () => (await sandbox.pressure()).oomKills >= 1);
      await sandbox.release();
      expect((await sandbox.pressure()).oomKills).toBeGreaterThanOrEqual(1);
      expect((await shared.pressure()).oomKills).toBe(0);
    });

    it('limits the workspace’s size: a full disk gives ENOSPC, is reported, and the host and other workspaces keep their room', async (context) => {
      skipUnlessEnforced(context, 'disk');
      context.skip((await shared.pressure()).disk === null, 'the provider was made without a workspace size limit');
      const sandbox = await acquire('disk');
      const empty = (await sandbox.pressure()).disk;
      expect(empty?.sizeBytes).toBeGreaterThan(0);
      expect(empty!.freeBytes).toBeGreaterThan(empty!.sizeBytes / 2);
      const size = Math.ceil(empty!.sizeBytes / 1024 / 1024);
      // Twice the disk's size, in the workspace and in the home directory (one file system).
      const result = await run(sandbox, ['sh', '-c', `head -c ${size}M /dev/zero > fill; echo status=$?; head -c 1M /dev/zero > ~/more; echo home=$?`]);
      expect(result.stderr).toMatch(/No space left on device/);
      expect(result.stdout).toMatch(/status=[1-9]/);
      expect(result.stdout).toMatch(/home=[1-9]/);
      const full = (await sandbox.pressure()).disk!;
      expect(full.freeBytes).toBeLessThan(1024 * 1024);
      // Another workspace has all its room.
      expect((await shared.pressure()).disk!.freeBytes).toBeGreaterThan(full.sizeBytes / 2);
      expect((await run(sandbox, ['sh', '-c', 'rm fill; echo freed > after.txt && cat after.txt'])).stdout).toBe('freed\n');
      expect((await sandbox.pressure()).disk!.freeBytes).toBeGreaterThan(full.sizeBytes / 2);
      await sandbox.release();
    });

    it.skipIf(options.wholeSandboxLimits !== undefined)(`enforces the pids limit by stopping a fork loop${options.wholeSandboxLimits ? ` (skipped: ${options.wholeSandboxLimits})` : ''}`, async (context) => {
      skipUnlessEnforced(context, 'pids');
      const sandbox = await acquire('pids', { pids: 32 });
      const loop = 'i=0; while [ $i -lt 200 ]; do sleep 60 >/dev/null 2>&1 & i=$((i+1)); echo $i > forks; done';
      const result = await run(sandbox, ['sh', '-c', loop]);
      const forks = Number((await sandbox.readFile('forks')).toString());
      expect(result.code).not.toBe(0);
      expect(forks).toBeGreaterThan(0);
      expect(forks).toBeLessThan(32);
      await sandbox.release();
    });

    it('kills every process on release, double-forked ones included, and is idempotent', async () => {
      const sandbox = await acquire('release');
      const marker = uniqueSeconds();
      const started = await run(sandbox, ['sh', '-c', `(sleep ${marker} > /dev/null 2>&1 &); (setsid sleep ${marker} > /dev/null 2>&1 &); echo forked`]);
      expect(started.stdout).toBe('forked\n');
      const countInside = async () =>
        (await run(sandbox, ['sh', '-c', `cat /proc/[0-9]*/cmdline | tr '\\0' ' '`])).stdout.split(`sleep ${marker}`).length - 1;
      await waitFor(async () => (await countInside()) === 2);
      await sandbox.release();
      await sandbox.release();
      expect(await hostProcessesMatching(`sleep\0${marker}`)).toEqual([]);
      expect(() => sandbox.exec(['true'])).toThrow(expect.objectContaining({ code: 'SANDBOX_UNAVAILABLE' }));
    });

    it('keeps the workspace and the home directory across release', async () => {
      const first = await acquire('persist');
      await run(first, ['sh', '-c', 'echo kept > kept.txt; mkdir -p ~/.claude && echo session > ~/.claude/marker']);
      await first.release();
      const second = await acquire('persist');
      expect(second.id).not.toBe(first.id);
      expect((await second.readFile('kept.txt')).toString()).toBe('kept\n');
      expect((await run(second, ['cat', `${sandboxPaths.home}/.claude/marker`])).stdout).toBe('session\n');
      await second.release();
    });

    it('removes a workspace with removeWorkspace', async () => {
      const sandbox = await acquire('removed');
      await sandbox.writeFile('gone.txt', 'x');
      await provider.removeWorkspace(sandbox.workspaceId);
      expect(() => sandbox.exec(['true'])).toThrow(expect.objectContaining({ code: 'SANDBOX_UNAVAILABLE' }));
      const again = await acquire('removed');
      await expect(again.readFile('gone.txt')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await again.release();
    });

    it('runs the real claude binary from PATH', async () => {
      const result = await run(shared, ['claude', '--version']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/\(Claude Code\)/);
    });
  });
}

interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

async function run(sandbox: Sandbox, argv: string[], options?: ExecOptions): Promise<RunResult> {
  const child = sandbox.exec(argv, options);
  const [stdout, stderr, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  return { ...status, stdout, stderr };
}

function collect(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A sleep duration no other process uses, so the process can be found by its command line. */
function uniqueSeconds(): string {
  return `${900 + (randomBytes(2).readUInt16BE() % 99)}.${randomBytes(3).readUIntBE(0, 3)}`;
}

/** Host processes whose command line contains the text (NUL between arguments). */
async function hostProcessesMatching(text: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const commandLine = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.includes(text)) found.push(Number(entry));
  }
  return found;
}

function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((address) => address && !address.internal && address.family === 'IPv4')
    .map((address) => address!.address);
}

export interface TestGateway {
  socketPath: string;
  requests: string[];
  close(): Promise<void>;
}

/** An HTTP server on a unix socket, standing in for the model gateway. */
export async function startTestGateway(): Promise<TestGateway> {
  const directory = await mkdtemp(path.join(tmpdir(), 'agentyard-gateway-'));
  const socketPath = path.join(directory, 'gateway.sock');
  const requests: string[] = [];
  const server: HttpServer = createHttpServer((request, response) => {
    requests.push(request.url ?? '');
    response.end(`gateway saw ${request.method} ${request.url}`);
  });
  await new Promise<void>((resolve) => server.listen({ path: socketPath, readableAll: true, writableAll: true }, resolve));
  return {
    socketPath,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** A TCP listener on every host address, counting the connections it gets. */
async function startTcpListener(): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const state = { connections: 0 };
  const server: TcpServer = createTcpServer((socket) => {
    state.connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    get connections() {
      return state.connections;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
