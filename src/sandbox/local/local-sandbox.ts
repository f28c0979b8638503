import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readlink, rm } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { AppError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import {
  sandboxPaths,
  type ExecOptions,
  type ExecProcess,
  type ExitStatus,
  type Sandbox,
  type SandboxPressure,
  type WorkspaceFileAccess,
} from '../../core/sandbox.ts';
import type { SandboxCgroup } from '../cgroups.ts';
import { sandboxEnv, validateArgv } from '../exec-input.ts';
import { buildExecArgv, buildLauncherArgv, type LauncherOptions } from './bwrap-args.ts';
import { spawnPtyProcess } from './pty-process.ts';

/** Everything a LocalSandbox needs once its init is up; the provider gathers it. */
export interface LocalSandboxInit {
  id: string;
  workspaceId: string;
  gatewayUrl: string;
  /** The host process the provider spawned (bwrap's outer process); it exits when the sandbox dies. */
  init: ChildProcess;
  /** Host pid of the sandbox's pid 1, whose namespaces exec() enters. */
  initPid: number;
  /** `pid:[inode]` of the sandbox's pid namespace, to be sure initPid was not reused before killing it. */
  pidNamespace: string;
  cgroupNamespace: boolean;
  cgroup: SandboxCgroup | null;
  files: WorkspaceFileAccess;
  /** Host directory with the sandbox's generated files; deleted on release. */
  runtimeDir: string;
  nsenter: string;
  launcher: LauncherOptions;
  uid: number;
  gid: number;
  /** The workspace disk's size and free space, when it has a limit. */
  disk(): Promise<SandboxPressure['disk']>;
  logger: Logger;
  onReleased(sandbox: LocalSandbox): void;
}

/** Variables that would change how the root-run host launcher (sh, prlimit, nsenter) loads code. */
const hostUnsafeEnv = /^(LD_.*|GCONV_PATH|LOCPATH|NLSPATH|GLIBC_TUNABLES|HOSTALIASES|MALLOC_.*)$/;
const releaseTimeoutMs = 5_000;

/** One bubblewrap sandbox: a long-lived init holding the namespaces, and processes entered into them. */
export class LocalSandbox implements Sandbox {
  readonly id: string;
  readonly workspaceId: string;
  readonly gatewayUrl: string;
  private readonly processes = new Set<ExecProcess>();
  private readonly initExited: Promise<void>;
  private initAlive = true;
  private releasing: Promise<void> | undefined;
  private oomKills = 0;
  private cgroupRemoved = false;

  constructor(private readonly state: LocalSandboxInit) {
    this.id = state.id;
    this.workspaceId = state.workspaceId;
    this.gatewayUrl = state.gatewayUrl;
    this.initExited = new Promise((resolve) => {
      if (state.init.exitCode !== null || state.init.signalCode !== null) resolve();
      else state.init.once('exit', () => resolve());
    });
    void this.initExited.then(() => {
      this.initAlive = false;
      if (this.releasing) return;
      // Without its init the sandbox is gone: free what is left, so the workspace can be acquired again.
      state.logger.warn({ sandboxId: this.id, workspaceId: this.workspaceId }, 'sandbox init exited unexpectedly');
      this.release().catch(() => undefined);
    });
  }

  /** Host pid of the sandbox's pid 1 (for operators and tests). */
  get initPid(): number {
    return this.state.initPid;
  }

  exec(argv: string[], options: ExecOptions = {}): ExecProcess {
    if (this.releasing) throw new AppError('SANDBOX_UNAVAILABLE', 'sandbox was released');
    if (!this.initAlive) throw new AppError('SANDBOX_UNAVAILABLE', 'sandbox is no longer running');
    validateArgv(argv);
    const cwd = options.cwd ?? sandboxPaths.workspace;
    if (!cwd.startsWith('/') || cwd.includes('\0')) throw new AppError('BAD_REQUEST', 'cwd must be an absolute path');
    const env = sandboxEnv(options.env, { pattern: hostUnsafeEnv, reason: 'in a local sandbox' });
    const command = buildLauncherArgv(
      buildExecArgv({
        nsenter: this.state.nsenter,
        targetPid: this.state.initPid,
        cgroupNamespace: this.state.cgroupNamespace,
        cwd,
        uid: this.state.uid,
        gid: this.state.gid,
        argv,
      }),
      this.state.launcher,
      env,
    );
    const execProcess = options.tty
      ? spawnPtyProcess(command, env, options.tty)
      : new LocalExecProcess(
          spawn(command[0]!, command.slice(1), {
            env,
            stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
            // Its own process group on the host, which the in-sandbox process inherits: SIGKILL reaches both.
            detached: true,
          }),
        );
    this.processes.add(execProcess);
    void execProcess.exited.then(() => this.processes.delete(execProcess));
    return execProcess;
  }

  readFile(path: string): Promise<Buffer> {
    return this.state.files.read(path);
  }

  writeFile(path: string, data: Buffer | string): Promise<void> {
    return this.state.files.write(path, data);
  }

  /** Freezes the sandbox's cgroup; false (nothing changed) on a host without a cgroup freezer. */
  async pause(): Promise<boolean> {
    const { cgroup } = this.state;
    if (!cgroup?.canFreeze || this.releasing || !this.initAlive) return false;
    await cgroup.freeze();
    return true;
  }

  async resume(): Promise<void> {
    const { cgroup } = this.state;
    if (!cgroup?.canFreeze || this.releasing) return;
    await cgroup.thaw();
  }

  release(): Promise<void> {
    this.releasing ??= this.teardown();
    return this.releasing;
  }

  async pressure(): Promise<SandboxPressure> {
    return { oomKills: await this.countOomKills(), disk: await this.state.disk() };
  }

  /** From the memory cgroup while it exists; the last count read once it is removed. */
  private async countOomKills(): Promise<number> {
    if (this.state.cgroup && !this.cgroupRemoved) this.oomKills = Math.max(this.oomKills, await this.state.cgroup.oomKills());
    return this.oomKills;
  }

  private async teardown(): Promise<void> {
    const { logger, cgroup } = this.state;
    try {
      // Frozen processes cannot die (cgroup v1): thaw a paused sandbox first.
      if (cgroup?.canFreeze) await cgroup.thaw().catch(() => undefined);
      // A dying pid-namespace init takes every process of the namespace with it, double forks included.
      await this.killInit();
      await withTimeout(this.initExited, releaseTimeoutMs).catch(() => {
        if (this.state.init.pid !== undefined) killQuietly(this.state.init.pid);
      });
      for (const execProcess of this.processes) execProcess.kill('SIGKILL');
      if (cgroup) {
        await cgroup.killAll(releaseTimeoutMs);
        await this.countOomKills();
        this.cgroupRemoved = true;
        await cgroup.remove();
      }
      await rm(this.state.runtimeDir, { recursive: true, force: true });
      logger.info({ sandboxId: this.id, workspaceId: this.workspaceId }, 'sandbox released');
    } catch (error) {
      logger.error({ sandboxId: this.id, error }, 'sandbox release failed');
      throw new AppError('INTERNAL', 'sandbox release failed', { sandboxId: this.id }, { cause: error });
    } finally {
      this.state.onReleased(this);
    }
  }

  private async killInit(): Promise<void> {
    const namespace = await readlink(`/proc/${this.state.initPid}/ns/pid`).catch(() => null);
    if (namespace === this.state.pidNamespace) killQuietly(this.state.initPid);
  }
}

/** A process entered into a sandbox; the host side is nsenter, which waits for it and mirrors its exit. */
class LocalExecProcess implements ExecProcess {
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exited: Promise<ExitStatus>;
  private done = false;

  constructor(private readonly child: ChildProcess) {
    this.stdin = child.stdin;
    this.stdout = child.stdout!;
    this.stderr = child.stderr!;
    // Writing to a process that has exited is not the caller's error to catch.
    this.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      });
      child.on('error', () => {
        if (child.pid !== undefined) return;
        this.done = true;
        resolve({ code: 127, signal: null });
      });
    });
  }

  resize(): void {}

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    const pid = this.child.pid;
    if (this.done || pid === undefined) return;
    if (signal === 'SIGKILL') {
      killQuietly(-pid, 'SIGKILL');
      return;
    }
    // Other signals go to the process inside (nsenter's only child), so that it may handle them.
    void innerPid(pid).then((inner) => killQuietly(inner ?? pid, signal));
  }
}

/** The host pid of nsenter's child: the process that runs argv inside the sandbox (just spawned: wait for it). */
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

function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
