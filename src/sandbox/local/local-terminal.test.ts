import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecProcess, Sandbox } from '../../core/sandbox.ts';
import { startTestGateway, type TestGateway } from '../sandbox.contract.ts';
import { createLocalProvider, type LocalProvider } from './index.ts';

const claudeBinary = fileURLToPath(new URL('../../../node_modules/@anthropic-ai/claude-code/bin/claude.exe', import.meta.url));

/** Collects a terminal's output and waits for patterns in it. */
class Screen {
  text = '';
  constructor(readonly process: ExecProcess) {
    process.stdout.on('data', (chunk: Buffer) => (this.text += chunk.toString('utf8')));
  }
  type(input: string): void {
    this.process.stdin!.write(input);
  }
  async waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.text.match(pattern);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; screen:\n${this.text}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

describe('LocalSandbox terminals', () => {
  let dataDir: string;
  let gateway: TestGateway;
  let provider: LocalProvider;
  let sandbox: Sandbox;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-tty-'));
    gateway = await startTestGateway();
    provider = createLocalProvider({ dataDir, claudeBinary });
    sandbox = await provider.acquire({ workspaceId: 'tty', limits: { memoryMb: 512, cpus: 1, pids: 128 }, gatewaySocket: gateway.socketPath });
  });

  afterAll(async () => {
    await provider?.close();
    await gateway?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const shell = (cols = 100, rows = 30): Screen =>
    new Screen(sandbox.exec(['/bin/bash', '--norc', '--noprofile', '-i'], { tty: { cols, rows }, env: { TERM: 'xterm-256color', PS1: 'PROMPT$ ' } }));

  it('gives the shell a terminal of the requested size, and resize changes it', async () => {
    const screen = shell(100, 30);
    await screen.waitFor(/PROMPT\$ /);
    screen.type('stty size; echo "tty=$(test -t 0 && echo yes)"\r');
    await screen.waitFor(/^30 100\r?$/m);
    await screen.waitFor(/tty=yes/);

    screen.process.resize(132, 43);
    screen.type('stty size\r');
    await screen.waitFor(/^43 132\r?$/m);
    screen.type('exit\r');
    expect(await screen.process.exited).toEqual({ code: 0, signal: null });
    expect(screen.process.stderr.read()).toBeNull();
  });

  it('runs the shell in the sandbox as the agent user, in the workspace', async () => {
    const screen = shell();
    await screen.waitFor(/PROMPT\$ /);
    screen.type('echo "who=$(id -u):$(pwd):$(hostname)"\r');
    await screen.waitFor(/who=64000:\/workspace:agentyard/);
    screen.type('exit 3\r');
    expect((await screen.process.exited).code).toBe(3);
  });

  it('interrupts the foreground job with Ctrl-C and keeps the shell', async () => {
    const screen = shell();
    await screen.waitFor(/PROMPT\$ /);
    screen.type('sleep 30; echo after-sleep\r');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const startedAt = Date.now();
    screen.type('\x03');
    screen.type('echo "still here $((6*7))"\r');
    await screen.waitFor(/still here 42/);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    // Ctrl-C ends the whole command list: its echo never printed a line of its own.
    expect(screen.text).not.toMatch(/^after-sleep\r?$/m);
    screen.type('exit\r');
    await screen.process.exited;
  });

  it('kills the shell and its background jobs, even those ignoring SIGHUP, on SIGKILL', async () => {
    const screen = shell();
    await screen.waitFor(/PROMPT\$ /);
    // nohup: a job that ignores the terminal's hangup still dies with the session.
    screen.type('nohup sleep 1234 >/dev/null 2>&1 & echo "job=$!"\r');
    await screen.waitFor(/job=\d+/);
    screen.process.kill('SIGKILL');
    await screen.process.exited;
    const sleepers = async (): Promise<string> => {
      const probe = sandbox.exec(['/bin/sh', '-c', 'pgrep -x sleep || echo none']);
      let output = '';
      probe.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await probe.exited;
      return output.trim();
    };
    // The session's members get SIGHUP at once and SIGKILL after a grace period.
    let left = await sleepers();
    for (let attempt = 0; attempt < 50 && left !== 'none'; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      left = await sleepers();
    }
    expect(left).toBe('none');
  });

  it('refuses absurd terminal sizes', () => {
    expect(() => sandbox.exec(['/bin/bash'], { tty: { cols: 0, rows: 10 } })).toThrow(/terminal size/);
    expect(() => sandbox.exec(['/bin/bash'], { tty: { cols: 100_000, rows: 10 } })).toThrow(/terminal size/);
  });
});
