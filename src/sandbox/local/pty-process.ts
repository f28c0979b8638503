import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { IPty } from 'node-pty';
import { AppError } from '../../core/errors.ts';
import type { ExecProcess, ExitStatus } from '../../core/sandbox.ts';

type NodePty = typeof import('node-pty');

/** Largest terminal accepted; xterm.js never asks for more. */
const maxCols = 1000;
const maxRows = 500;
const sessionKillGraceMs = 2_000;

let nodePty: NodePty | undefined;

/** node-pty is a native addon: loaded on the first terminal, so a host where it failed to build still runs agents. */
function loadNodePty(): NodePty {
  if (nodePty) return nodePty;
  try {
    nodePty = createRequire(import.meta.url)('node-pty') as NodePty;
    return nodePty;
  } catch (error) {
    throw new AppError('SANDBOX_UNAVAILABLE', 'terminal support is unavailable: node-pty failed to load (run npm ci)', undefined, { cause: error });
  }
}

export function assertTerminalSize(cols: number, rows: number): void {
  if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1 || cols > maxCols || rows > maxRows) {
    throw new AppError('BAD_REQUEST', `terminal size must be 1-${maxCols} columns and 1-${maxRows} rows`);
  }
}

/**
 * Runs a host command (the sandbox launcher) on a new pseudo-terminal. node-pty makes the launcher a session
 * leader with the pty as its controlling terminal; nsenter's child inherits both, so the shell inside the sandbox
 * gets job control, Ctrl-C and SIGWINCH from the pty, while the master stays on the host for resizing.
 */
export function spawnPtyProcess(command: string[], env: Record<string, string>, size: { cols: number; rows: number }): ExecProcess {
  assertTerminalSize(size.cols, size.rows);
  const pty = loadNodePty().spawn(command[0]!, command.slice(1), {
    name: env.TERM ?? 'xterm-256color',
    cols: size.cols,
    rows: size.rows,
    // The host side starts in /; the sandbox side gets its own working directory from nsenter.
    cwd: '/',
    env,
    encoding: null,
  });
  return new PtyProcess(pty);
}

class PtyProcess implements ExecProcess {
  readonly stdin: Writable;
  readonly stdout = new PassThrough();
  readonly stderr: Readable = Readable.from([]);
  readonly exited: Promise<ExitStatus>;
  private done = false;

  constructor(private readonly pty: IPty) {
    this.stdin = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (!this.done) pty.write(chunk);
        callback();
      },
    });
    this.stdin.on('error', () => undefined);
    // The master's output is paused while the reader is behind, which blocks the writer inside: no unbounded buffer.
    (pty.onData as unknown as (listener: (data: Buffer) => void) => void)((data) => {
      if (!this.stdout.write(data)) pty.pause();
    });
    this.stdout.on('drain', () => {
      if (!this.done) pty.resume();
    });
    this.exited = new Promise((resolve) => {
      pty.onExit(({ exitCode, signal }) => {
        this.done = true;
        this.stdout.end();
        const signalName = signal ? (Object.entries(constants.signals).find(([, number]) => number === signal)?.[0] ?? null) : null;
        resolve({ code: signalName ? null : exitCode, signal: signalName });
      });
    });
  }

  resize(cols: number, rows: number): void {
    if (this.done) return;
    assertTerminalSize(cols, rows);
    this.pty.resize(cols, rows);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.done) return;
    const leader = this.pty.pid;
    if (signal === 'SIGKILL') {
      // The shell moves its jobs into process groups of their own; all of them stay in the pty's session.
      void killSession(leader);
      return;
    }
    void innerPid(leader).then((inner) => signalQuietly(inner ?? leader, signal));
  }
}

/** SIGHUP (as a closed terminal would), then SIGKILL, to every host process of the session. */
async function killSession(sessionId: number): Promise<void> {
  for (const pid of await sessionMembers(sessionId)) signalQuietly(pid, 'SIGHUP');
  signalQuietly(sessionId, 'SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, sessionKillGraceMs).unref());
  for (const pid of await sessionMembers(sessionId)) signalQuietly(pid, 'SIGKILL');
}

async function sessionMembers(sessionId: number): Promise<number[]> {
  const members: number[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => null);
    if (!stat) continue;
    // Fields after the parenthesised command: state ppid pgrp session …
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[3]) === sessionId) members.push(Number(name));
  }
  return members;
}

/** The host pid of nsenter's child, which runs argv inside the sandbox (waited for briefly after a spawn). */
async function innerPid(nsenterPid: number): Promise<number | null> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const text = await readFile(`/proc/${nsenterPid}/task/${nsenterPid}/children`, 'utf8').catch(() => null);
    if (text === null) return null;
    const first = text.trim().split(/\s+/)[0];
    if (first) return Number(first);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return null;
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
