import { randomBytes } from 'node:crypto';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import type Dockerode from 'dockerode';
import { sandboxEnv, validateArgv } from '../exec-input.ts';
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
import { oomCountFileOf, readOomKillCount } from '../cgroups.ts';
import { dockerMessage, dockerStatus } from './docker-client.ts';

/** Everything a DockerSandbox needs once its container runs; the provider gathers it. */
export interface DockerSandboxInit {
  id: string;
  workspaceId: string;
  gatewayUrl: string;
  container: Dockerode.Container;
  files: WorkspaceFileAccess;
  uid: number;
  gid: number;
  /**
   * Make terminals inside the sandbox with script(1) rather than Docker's: gVisor under Docker gives an exec no
   * terminal. Sizes are then set with stty.
   */
  emulateTty: boolean;
  /** The workspace disk's size and free space, when it has a limit. */
  disk(): Promise<SandboxPressure['disk']>;
  logger: Logger;
  /** Frees what the provider holds for the sandbox (pool slot mounts, runtime files) after the container is gone. */
  onReleased(sandbox: DockerSandbox): Promise<void>;
}

/** Where each exec records its pid inside the sandbox (a tmpfs), so that kill() can reach the process itself. */
const pidFilePrefix = '/tmp/.agentyard-exec-';
const signalNumbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

/** One container running one conversation's agent; processes enter it with `docker exec`. */
export class DockerSandbox implements Sandbox {
  readonly id: string;
  readonly workspaceId: string;
  readonly gatewayUrl: string;
  private readonly processes = new Set<DockerExecProcess>();
  private releasing: Promise<void> | undefined;
  private gone = false;
  private paused = false;
  /** OOM kills as last counted, and what counts them. */
  private oomKills = 0;
  private oomEvents = 0;
  private oomEventsCounted = 0;
  private oomFile: Promise<string | null> | undefined;

  constructor(private readonly state: DockerSandboxInit) {
    this.id = state.id;
    this.workspaceId = state.workspaceId;
    this.gatewayUrl = state.gatewayUrl;
  }

  /** The Docker container id (for operators and tests). */
  get containerId(): string {
    return this.state.container.id;
  }

  /** Marks the sandbox as gone when its container died on its own (the provider watches events). */
  markGone(): void {
    if (this.gone || this.releasing) return;
    this.gone = true;
    this.state.logger.warn({ sandboxId: this.id, workspaceId: this.workspaceId }, 'sandbox container exited unexpectedly');
    this.release().catch(() => undefined);
  }

  /** The engine reported an OOM in the container (the provider watches events); one kill may bring several. */
  noteOom(): void {
    this.oomEvents += 1;
    this.state.logger.warn({ sandboxId: this.id, workspaceId: this.workspaceId }, 'sandbox out of memory');
  }

  /**
   * OOM kills come from the container's memory cgroup, which counts them exactly. Where it cannot be read (a remote
   * engine, or the container is gone, as a gVisor sandbox killed whole is), an OOM event since the last count is
   * one more kill.
   */
  async pressure(): Promise<SandboxPressure> {
    this.oomFile ??= this.state.container.inspect().then(
      (inspected) => (inspected.State.Pid > 0 ? oomCountFileOf(inspected.State.Pid) : null),
      () => null,
    );
    const file = await this.oomFile;
    const counted = file ? await readOomKillCount(file) : null;
    if (counted !== null) {
      this.oomKills = Math.max(this.oomKills, counted);
      this.oomEventsCounted = this.oomEvents;
    } else if (this.oomEvents > this.oomEventsCounted) {
      this.oomKills += 1;
      this.oomEventsCounted = this.oomEvents;
    }
    return { oomKills: this.oomKills, disk: await this.state.disk() };
  }

  exec(argv: string[], options: ExecOptions = {}): ExecProcess {
    if (this.releasing) throw new AppError('SANDBOX_UNAVAILABLE', 'sandbox was released');
    if (this.gone) throw new AppError('SANDBOX_UNAVAILABLE', 'sandbox is no longer running');
    validateArgv(argv);
    const cwd = options.cwd ?? sandboxPaths.workspace;
    if (!cwd.startsWith('/') || cwd.includes('\0')) throw new AppError('BAD_REQUEST', 'cwd must be an absolute path');
    const env = sandboxEnv(options.env);
    const tty = options.tty ? { cols: clampSize(options.tty.cols), rows: clampSize(options.tty.rows) } : null;
    const execProcess = new DockerExecProcess({
      container: this.state.container,
      argv,
      env,
      cwd,
      user: `${this.state.uid}:${this.state.gid}`,
      stdin: Boolean(options.stdin) || tty !== null,
      tty,
      emulateTty: this.state.emulateTty,
      logger: this.state.logger,
    });
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

  /** Freezes the container (Docker pause: the cgroup freezer, or gVisor's own). */
  async pause(): Promise<boolean> {
    if (this.releasing || this.gone) return false;
    if (this.paused) return true;
    try {
      await this.state.container.pause();
    } catch (error) {
      if (!/already paused/i.test(dockerMessage(error))) throw wrap(error, 'pause', this.id);
    }
    this.paused = true;
    return true;
  }

  async resume(): Promise<void> {
    if (this.releasing || this.gone) return;
    try {
      await this.state.container.unpause();
    } catch (error) {
      if (!/not paused/i.test(dockerMessage(error))) throw wrap(error, 'resume', this.id);
    }
    this.paused = false;
  }

  release(): Promise<void> {
    this.releasing ??= this.teardown();
    return this.releasing;
  }

  private async teardown(): Promise<void> {
    const { logger, container } = this.state;
    try {
      // Removing with force SIGKILLs every process of the container (it is a pid namespace and a cgroup), paused or not.
      await container.remove({ force: true, v: true }).catch((error: unknown) => {
        if (dockerStatus(error) !== 404) throw error;
      });
      for (const execProcess of this.processes) execProcess.abandon();
      logger.info({ sandboxId: this.id, workspaceId: this.workspaceId }, 'sandbox released');
    } catch (error) {
      logger.error({ sandboxId: this.id, error }, 'sandbox release failed');
      throw wrap(error, 'release', this.id);
    } finally {
      await this.state.onReleased(this);
    }
  }
}

interface DockerExecInput {
  container: Dockerode.Container;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  user: string;
  stdin: boolean;
  tty: { cols: number; rows: number } | null;
  emulateTty: boolean;
  logger: Logger;
}

/**
 * A process started with `docker exec`. Docker cannot signal an exec, and ending the API connection leaves the
 * process running; so the process records its pid in the sandbox first, and kill() signals it from inside.
 */
class DockerExecProcess implements ExecProcess {
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exited: Promise<ExitStatus>;
  private readonly execId = randomBytes(8).toString('hex');
  private exec: Dockerode.Exec | undefined;
  private stream: Duplex | undefined;
  private done = false;
  private sentSignal: NodeJS.Signals | null = null;
  private settle!: (status: ExitStatus) => void;

  constructor(private readonly input: DockerExecInput) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.stdout = stdout;
    this.stderr = stderr;
    this.stdin = input.stdin ? new PassThrough() : null;
    // Writing to a process that has exited is not the caller's error to catch.
    this.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) => (this.settle = resolve));
    void this.run(stdout, stderr);
  }

  resize(cols: number, rows: number): void {
    if (!this.input.tty || this.done || !this.exec) return;
    if (!this.input.emulateTty) {
      this.exec.resize({ w: clampSize(cols), h: clampSize(rows) }).catch(() => undefined);
      return;
    }
    // script(1)'s child holds the terminal; setting its size signals SIGWINCH to the terminal's foreground group.
    const script = [
      `p=$(cat ${pidFilePrefix}${this.execId}) || exit 1`,
      'c=$(cat /proc/$p/task/$p/children | cut -d" " -f1)',
      `stty -F "$(readlink /proc/$c/fd/0)" cols ${clampSize(cols)} rows ${clampSize(rows)}`,
    ].join('\n');
    void this.control(['/bin/sh', '-c', script]).catch(() => undefined);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.done) return;
    this.sentSignal = signal;
    const number = signalNumbers[signal];
    if (number === undefined) throw new AppError('BAD_REQUEST', `unsupported signal ${signal}`);
    // SIGKILL takes the whole process group (the exec runs in its own session); other signals go to the process.
    const target = signal === 'SIGKILL' ? `-- -$p` : '$p';
    const script = [
      `f=${pidFilePrefix}${this.execId}`,
      'i=0; while [ ! -s "$f" ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done',
      'p=$(cat "$f") || exit 1',
      `/bin/kill -${number} ${target} 2>/dev/null || /bin/kill -${number} $p`,
    ].join('\n');
    void this.control(['/bin/sh', '-c', script]).catch((error: unknown) =>
      this.input.logger.warn({ error: dockerMessage(error), signal }, 'could not signal a sandbox process'),
    );
  }

  /** The sandbox is gone: its processes died with it. */
  abandon(): void {
    this.stream?.destroy();
  }

  private async run(stdout: PassThrough, stderr: PassThrough): Promise<void> {
    const { container } = this.input;
    const tty = this.input.emulateTty ? null : this.input.tty;
    try {
      this.exec = await container.exec({
        Cmd: this.wrappedArgv(),
        AttachStdin: this.input.stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: tty !== null,
        User: this.input.user,
        WorkingDir: this.input.cwd,
        ...(tty ? { Env: ['TERM=xterm-256color'] } : {}),
      });
      const stream = (await this.exec.start({ hijack: true, stdin: this.input.stdin, Tty: tty !== null })) as unknown as Duplex;
      this.stream = stream;
      if (this.stdin) {
        this.stdin.pipe(stream);
        stream.on('error', () => undefined);
      }
      if (tty) stream.pipe(stdout, { end: false });
      // script(1) writes the terminal's output to stdout like Docker's terminal does.
      else demultiplex(stream, stdout, this.input.tty ? stdout : stderr);
      await new Promise<void>((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', () => resolve());
      });
      const status = await this.exitStatus();
      this.finish(stdout, stderr, status);
    } catch (error) {
      const status = dockerStatus(error);
      stderr.write(`agentyard: could not run ${this.input.argv[0]} in the sandbox: ${dockerMessage(error)}\n`);
      this.finish(stdout, stderr, { code: status === 404 || status === 409 ? 126 : 127, signal: null });
    }
  }

  private finish(stdout: PassThrough, stderr: PassThrough, status: ExitStatus): void {
    this.done = true;
    stdout.end();
    stderr.end();
    let pending = 2;
    const settle = () => (pending -= 1) === 0 && this.settle(status);
    if (stdout.readableEnded || stdout.destroyed) settle();
    else stdout.once('end', settle).once('close', settle);
    if (stderr.readableEnded || stderr.destroyed) settle();
    else stderr.once('end', settle).once('close', settle);
    // Nobody reads a stream the caller ignored; let it end anyway.
    if (stdout.listenerCount('data') === 0 && !stdout.readableFlowing) stdout.resume();
    if (stderr.listenerCount('data') === 0 && !stderr.readableFlowing) stderr.resume();
  }

  /** The exec's exit code; the stream can end a moment before Docker records it. */
  private async exitStatus(): Promise<ExitStatus> {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const info = await this.exec!.inspect().catch(() => null);
      if (info === null) return { code: null, signal: 'SIGKILL' };
      if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) {
        const code = info.ExitCode;
        const sent = this.sentSignal;
        if (sent && code === 128 + (signalNumbers[sent] ?? -1)) return { code: null, signal: sent };
        return { code, signal: null };
      }
      await new Promise((resolve) => setTimeout(resolve, attempt < 20 ? 5 : 50));
    }
    return { code: null, signal: null };
  }

  /**
   * `sh` records its pid and replaces itself, through `env -i`, with argv in exactly the given environment. Docker
   * starts every exec (runc and runsc alike) as the leader of its own session, so its pid also names its group.
   */
  private wrappedArgv(): string[] {
    const assignments = Object.entries(this.input.env).map(([name, value]) => `${name}=${value}`);
    const { tty } = this.input;
    if (tty && this.input.emulateTty) {
      const inner = ['stty', 'cols', String(tty.cols), 'rows', String(tty.rows), '2>/dev/null;', 'exec', '/usr/bin/env', '-i', ...[...assignments, ...this.input.argv].map(shellQuote)];
      return ['/bin/sh', '-c', `echo $$ > ${pidFilePrefix}$0; exec /usr/bin/script -qefc "$1" /dev/null`, this.execId, inner.join(' ')];
    }
    // Docker's own terminal: the size is set here too, as this engine's API (1.41) cannot create an exec with one.
    const size = tty ? `stty cols ${tty.cols} rows ${tty.rows} 2>/dev/null; ` : '';
    return ['/bin/sh', '-c', `echo $$ > ${pidFilePrefix}$0; ${size}exec /usr/bin/env -i "$@"`, this.execId, ...assignments, ...this.input.argv];
  }

  /** Runs a short control command in the sandbox (as the agent user) and waits for it. */
  private async control(argv: string[]): Promise<void> {
    const exec = await this.input.container.exec({ Cmd: argv, AttachStdout: true, AttachStderr: true, User: this.input.user });
    const stream = (await exec.start({ hijack: true, stdin: false })) as unknown as Duplex;
    stream.resume();
    await new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', () => resolve());
    });
  }
}

/** Splits Docker's multiplexed exec stream (8-byte frame headers) into stdout and stderr. */
function demultiplex(stream: Readable, stdout: PassThrough, stderr: PassThrough): void {
  let buffer: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    while (buffer.length >= 8) {
      const length = buffer.readUInt32BE(4);
      if (buffer.length < 8 + length) break;
      const payload = buffer.subarray(8, 8 + length);
      if (buffer[0] === 2) stderr.write(payload);
      else stdout.write(payload);
      buffer = buffer.subarray(8 + length);
    }
  });
}


const shellQuote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

const clampSize = (value: number): number => Math.min(1000, Math.max(1, Math.floor(Number.isFinite(value) ? value : 80)));

function wrap(error: unknown, operation: string, sandboxId: string): AppError {
  if (error instanceof AppError) return error;
  return new AppError('SANDBOX_UNAVAILABLE', `docker ${operation} failed: ${dockerMessage(error)}`, { backend: 'docker', operation, sandboxId }, { cause: error });
}
