import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, constants, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { AppError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { silentLogger, type Logger } from '../../core/logger.ts';
import { sandboxOpenFileLimit, type BackendCheck, type Sandbox, type SandboxLimits, type SandboxProvider, type SandboxSpec, type WorkspaceFileAccess } from '../../core/sandbox.ts';
import { createHostCgroups, type CgroupController, type CgroupSupport, type HostCgroups, type SandboxCgroup } from '../cgroups.ts';
import { createWorkspaces, type Workspaces } from '../workspaces.ts';
import { buildEtcFiles, buildInitArgv, buildLauncherArgv, optionsOnFd, sandboxTools, type LauncherOptions } from './bwrap-args.ts';
import { LocalSandbox } from './local-sandbox.ts';

export interface LocalProviderOptions {
  /** Host directory holding `workspaces/<workspaceId>/{workspace,home}` and per-sandbox runtime files. */
  dataDir: string;
  /** Host path of the pinned Claude Code binary; it appears in the sandbox as `/opt/agentyard/bin/claude`. */
  claudeBinary: string;
  /** Unprivileged host uid and gid the sandboxed processes run as (default 64000). Never 0. */
  sandboxUid?: number;
  sandboxGid?: number;
  /** Port inside the sandbox at which the gateway bridge listens (default 4180). */
  gatewayPort?: number;
  logger?: Logger;
  /** Enforce limits with cgroups when the host allows it (default true); false forces the rlimit fallback. */
  cgroups?: boolean;
  /** Largest file readFile and writeFile accept, in bytes. */
  maxFileBytes?: number;
  /** Size limit of each workspace (with the agent's home), MiB, as a loop-mounted ext4 image; 0 or unset: none. */
  workspaceDiskMb?: number;
  /** Other server processes (replicas) share the data directory. */
  sharedDataDir?: boolean;
}

/** How each limit of SandboxLimits is enforced on this host. */
export interface LimitEnforcement {
  memory: 'cgroup-v1' | 'cgroup-v2' | 'none';
  cpu: 'cgroup-v1' | 'cgroup-v2' | 'none';
  /** `rlimit-nproc` counts every process of the sandbox uid, so all sandboxes share it. */
  pids: 'cgroup-v1' | 'cgroup-v2' | 'rlimit-nproc' | 'none';
}

interface HostTools {
  shell: string;
  bwrap: string;
  nsenter: string;
  prlimit: string;
}

const execFileAsync = promisify(execFile);
const defaultUid = 64_000;
const infoFd = 3;
/** The pipe on which bwrap reads its options (`--args`). */
const argsFd = 4;
const startTimeoutMs = 10_000;
const workspaceIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const hostSearchPath = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];

/** The local backend: one bubblewrap sandbox per conversation on this host. Requires root. */
export function createLocalProvider(options: LocalProviderOptions): LocalProvider {
  return new LocalProvider(options);
}

export class LocalProvider implements SandboxProvider {
  readonly kind = 'local' as const;
  readonly runtimes = [] as const;
  private readonly logger: Logger;
  private readonly uid: number;
  private readonly gid: number;
  private readonly gatewayPort: number;
  private readonly cgroups: HostCgroups;
  private readonly workspaces: Workspaces;
  private readonly live = new Map<string, LocalSandbox>();
  /** Workspaces with an acquire in progress, so two acquires cannot both win. */
  private readonly starting = new Set<string>();
  private tools: Promise<HostTools> | undefined;
  private closed = false;

  constructor(private readonly options: LocalProviderOptions) {
    this.logger = (options.logger ?? silentLogger).child({ sandboxBackend: 'local' });
    this.uid = options.sandboxUid ?? defaultUid;
    this.gid = options.sandboxGid ?? this.uid;
    this.gatewayPort = options.gatewayPort ?? 4180;
    if (!Number.isInteger(this.uid) || this.uid <= 0 || !Number.isInteger(this.gid) || this.gid <= 0) {
      throw new AppError('BAD_REQUEST', 'sandboxUid and sandboxGid must be positive integers (never root)');
    }
    if (!Number.isInteger(this.gatewayPort) || this.gatewayPort < 1 || this.gatewayPort > 65_535) {
      throw new AppError('BAD_REQUEST', 'gatewayPort must be a TCP port');
    }
    this.cgroups = createHostCgroups({ logger: this.logger });
    this.workspaces = createWorkspaces({
      dataDir: options.dataDir,
      uid: this.uid,
      gid: this.gid,
      ...(options.maxFileBytes !== undefined ? { maxFileBytes: options.maxFileBytes } : {}),
      ...(options.workspaceDiskMb !== undefined ? { diskMb: options.workspaceDiskMb } : {}),
      ...(options.sharedDataDir ? { shared: true } : {}),
      logger: this.logger,
    });
  }

  async acquire(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox> {
    if (this.closed) throw new AppError('SANDBOX_UNAVAILABLE', 'sandbox provider is closed');
    validateSpec(spec);
    if (spec.runtime !== undefined) throw new AppError('BAD_REQUEST', `the local backend has no runtime choice (asked for ${spec.runtime})`);
    signal?.throwIfAborted();
    const { workspaceId } = spec;
    if (this.live.has(workspaceId) || this.starting.has(workspaceId)) {
      throw new AppError('CONFLICT', `workspace ${workspaceId} already has a live sandbox`);
    }
    this.starting.add(workspaceId);
    const startedAt = performance.now();
    const id = newId('sbx');
    const runtimeDir = path.join(this.options.dataDir, 'sandboxes', id);
    let cgroup: SandboxCgroup | null = null;
    let init: ChildProcess | undefined;
    try {
      const tools = await this.hostTools();
      await this.assertClaudeBinary();
      await assertSocket(spec.gatewaySocket);
      const directories = await this.workspaces.prepare(workspaceId);
      const etcFiles = await this.writeRuntimeFiles(runtimeDir, id, spec);
      cgroup = this.options.cgroups === false ? null : await this.cgroups.create(id, spec.limits);
      const launcher = await this.launcherOptions(tools, cgroup, spec.limits);
      signal?.throwIfAborted();

      const initArgv = optionsOnFd(
        buildInitArgv({
          bwrap: tools.bwrap,
          workspaceDir: directories.workspace,
          homeDir: directories.home,
          etcFiles,
          gatewaySocket: spec.gatewaySocket,
          claudeBinary: this.options.claudeBinary,
          uid: this.uid,
          gid: this.gid,
          gatewayPort: this.gatewayPort,
          // Half the memory limit: tmpfs pages count against the memory cgroup, so a full /tmp must leave room for the agent.
          tmpfsBytes: Math.max(16, Math.floor(spec.limits.memoryMb / 2)) * 1024 * 1024,
          infoFd,
        }),
        argsFd,
      );
      const command = buildLauncherArgv(initArgv.argv, launcher);
      init = spawn(command[0]!, command.slice(1), { env: {}, stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
      const argsPipe = init.stdio[argsFd] as Writable;
      argsPipe.on('error', () => undefined); // the pipe resets if bwrap dies before reading it; spawn errors are reported below
      argsPipe.end(initArgv.options);
      const output = collectOutput(init);
      init.on('error', (error) => this.logger.error({ sandboxId: id, error }, 'sandbox init failed to spawn'));
      const info = await readInitInfo(init, output, signal);
      await waitForBridge(init, info.childPid, this.gatewayPort, output, signal);

      const sandbox = new LocalSandbox({
        id,
        workspaceId,
        gatewayUrl: `http://127.0.0.1:${this.gatewayPort}`,
        init,
        initPid: info.childPid,
        pidNamespace: `pid:[${info.pidNamespace}]`,
        cgroupNamespace: info.cgroupNamespace,
        cgroup,
        files: this.workspaceFiles(workspaceId),
        runtimeDir,
        nsenter: tools.nsenter,
        launcher,
        uid: this.uid,
        gid: this.gid,
        disk: () => this.workspaces.usage(workspaceId),
        logger: this.logger,
        onReleased: (released) => {
          if (this.live.get(workspaceId) === released) this.live.delete(workspaceId);
        },
      });
      if (this.closed) {
        await sandbox.release();
        throw new AppError('SANDBOX_UNAVAILABLE', 'sandbox provider is closed');
      }
      this.live.set(workspaceId, sandbox);
      this.logger.info(
        { sandboxId: id, workspaceId, labels: spec.labels, ms: Math.round(performance.now() - startedAt) },
        'sandbox acquired',
      );
      return sandbox;
    } catch (error) {
      if (init?.pid !== undefined) {
        // The outer bwrap's death takes the sandbox with it (--die-with-parent is relative to it).
        init.kill('SIGKILL');
        await new Promise((resolve) => (init!.exitCode !== null || init!.signalCode !== null ? resolve(null) : init!.once('exit', resolve)));
      }
      if (cgroup) await cgroup.killAll().then(() => cgroup!.remove()).catch(() => undefined);
      await rm(runtimeDir, { recursive: true, force: true }).catch(() => undefined);
      if (signal?.aborted) throw signal.reason;
      if (error instanceof AppError) throw error;
      this.logger.error({ workspaceId, error }, 'sandbox start failed');
      throw new AppError('SANDBOX_UNAVAILABLE', 'could not start a local sandbox', { workspaceId }, { cause: error });
    } finally {
      this.starting.delete(workspaceId);
    }
  }

  workspaceFiles(workspaceId: string): WorkspaceFileAccess {
    validateWorkspaceId(workspaceId);
    return this.workspaces.files(workspaceId);
  }

  async removeWorkspace(workspaceId: string): Promise<void> {
    validateWorkspaceId(workspaceId);
    if (this.starting.has(workspaceId)) throw new AppError('CONFLICT', `workspace ${workspaceId} has a sandbox starting`);
    await this.live.get(workspaceId)?.release();
    await this.workspaces.remove(workspaceId);
    this.logger.info({ workspaceId }, 'workspace removed');
  }

  async check(): Promise<BackendCheck[]> {
    const checks: BackendCheck[] = [];
    const isRoot = process.getuid?.() === 0;
    checks.push({
      name: 'root',
      ok: isRoot,
      detail: isRoot ? 'running as root' : `running as uid ${process.getuid?.()}`,
      ...(isRoot ? {} : { fix: 'run the server as root: the local backend creates namespaces and switches to the sandbox uid' }),
    });
    const bwrap = await findExecutable('bwrap');
    const bwrapVersion = bwrap ? await execFileAsync(bwrap, ['--version']).then((result) => result.stdout.trim(), () => null) : null;
    checks.push(
      toolCheck('bubblewrap', bwrap && bwrapVersion ? `${bwrapVersion} at ${bwrap}` : null, 'apt-get install -y bubblewrap'),
      toolCheck('socat', (await isExecutable(sandboxTools.socat)) ? sandboxTools.socat : null, 'apt-get install -y socat'),
      toolCheck('nsenter', await findExecutable('nsenter'), 'apt-get install -y util-linux'),
      toolCheck('setpriv', (await isExecutable(sandboxTools.setpriv)) ? sandboxTools.setpriv : null, 'apt-get install -y util-linux'),
    );
    const claude = await this.assertClaudeBinary().then(() => null, (error: unknown) => (error as Error).message);
    checks.push({
      name: 'claude binary',
      ok: claude === null,
      detail: claude ?? `${this.options.claudeBinary} is executable`,
      ...(claude === null ? {} : { fix: 'run npm install (it pins @anthropic-ai/claude-code), or point claudeBinary at the executable' }),
    });
    const enforcement = await this.limitEnforcement();
    const support = await this.cgroupSupport();
    for (const limit of ['memory', 'pids', 'cpu'] as const) {
      const mechanism = enforcement[limit];
      const ok = mechanism.startsWith('cgroup');
      checks.push({
        name: `limits.${limit}`,
        ok,
        detail: ok
          ? `${mechanism} under ${support.parents[limit]}`
          : `${mechanism === 'none' ? 'not enforced' : `${mechanism} only (shared by every sandbox of uid ${this.uid})`}${support.reason ? `: ${support.reason}` : ''}`,
        ...(ok ? {} : { fix: cgroupFix(limit) }),
      });
    }
    checks.push(await this.workspaces.check());
    return checks;
  }

  /** How each limit is enforced here: cgroups when writable, else rlimits where they fit, else not at all. */
  async limitEnforcement(): Promise<LimitEnforcement> {
    const support = await this.cgroupSupport();
    const byCgroup = (controller: CgroupController): 'cgroup-v1' | 'cgroup-v2' | 'none' =>
      support.version && support.controllers[controller] ? `cgroup-${support.version}` : 'none';
    const pids = byCgroup('pids');
    const prlimit = await findExecutable('prlimit');
    return { memory: byCgroup('memory'), cpu: byCgroup('cpu'), pids: pids === 'none' && prlimit ? 'rlimit-nproc' : pids };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.live.values()].map((sandbox) => sandbox.release()));
    await this.workspaces.close();
  }

  private cgroupSupport(): Promise<CgroupSupport> {
    if (this.options.cgroups === false) {
      return Promise.resolve({
        version: null,
        controllers: { memory: false, pids: false, cpu: false },
        parents: {},
        reason: 'cgroups disabled by configuration',
      });
    }
    return this.cgroups.detect();
  }

  private async launcherOptions(tools: HostTools, cgroup: SandboxCgroup | null, limits: SandboxLimits): Promise<LauncherOptions> {
    const enforcement = await this.limitEnforcement();
    return {
      shell: tools.shell,
      cgroupProcsFiles: cgroup?.procsFiles ?? [],
      // RLIMIT_CORE=0 always (a core of the 245 MB CLI would land in the workspace), and RLIMIT_NOFILE low, not the
      // server's; RLIMIT_NPROC only without a pids cgroup, since it counts every process of the uid. RLIMIT_AS/DATA
      // would break the CLI, which reserves far more address space than it uses.
      prlimit: {
        binary: tools.prlimit,
        nofile: sandboxOpenFileLimit,
        ...(enforcement.pids === 'rlimit-nproc' ? { nproc: limits.pids } : {}),
      },
    };
  }

  private hostTools(): Promise<HostTools> {
    if (this.tools) return this.tools;
    const tools = (async (): Promise<HostTools> => {
      const [shell, bwrap, nsenter, prlimit] = await Promise.all(['sh', 'bwrap', 'nsenter', 'prlimit'].map(findExecutable));
      const missing = [
        ...(bwrap ? [] : ['bwrap']),
        ...(nsenter ? [] : ['nsenter']),
        ...(prlimit ? [] : ['prlimit']),
        ...(shell ? [] : ['sh']),
        ...((await isExecutable(sandboxTools.setpriv)) ? [] : [sandboxTools.setpriv]),
        ...((await isExecutable(sandboxTools.socat)) ? [] : [sandboxTools.socat]),
      ];
      if (missing.length > 0) {
        throw new AppError('SANDBOX_UNAVAILABLE', `local sandbox tools missing: ${missing.join(', ')}`, { missing });
      }
      return { shell: shell!, bwrap: bwrap!, nsenter: nsenter!, prlimit: prlimit! };
    })();
    this.tools = tools;
    // A failed lookup is retried next time, after the operator installed what was missing.
    tools.catch(() => (this.tools = undefined));
    return tools;
  }

  private async assertClaudeBinary(): Promise<void> {
    const file = this.options.claudeBinary;
    const stats = await stat(file).catch(() => null);
    if (!stats?.isFile() || !(await isExecutable(file))) {
      throw new AppError('SANDBOX_UNAVAILABLE', `claude binary missing or not executable: ${file}`);
    }
  }


  private async writeRuntimeFiles(runtimeDir: string, id: string, spec: SandboxSpec) {
    await mkdir(runtimeDir, { recursive: true, mode: 0o755 });
    const contents = buildEtcFiles(this.uid, this.gid);
    const files = { passwd: path.join(runtimeDir, 'passwd'), group: path.join(runtimeDir, 'group'), hosts: path.join(runtimeDir, 'hosts') };
    for (const name of ['passwd', 'group', 'hosts'] as const) await writeFile(files[name], contents[name], { mode: 0o644 });
    const record = { id, workspaceId: spec.workspaceId, labels: spec.labels ?? {}, limits: spec.limits, startedAt: new Date().toISOString() };
    await writeFile(path.join(runtimeDir, 'sandbox.json'), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    return files;
  }
}

interface InitInfo {
  childPid: number;
  pidNamespace: number;
  cgroupNamespace: boolean;
}

interface OutputTail {
  text(): string;
}

/** Keeps the last few KB of bwrap's and socat's output for error messages, and drains the pipes. */
function collectOutput(child: ChildProcess): OutputTail {
  let tail = '';
  const append = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4096);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return { text: () => tail.trim() };
}

/** Reads bwrap's --info-fd report: the host pid of the sandbox's pid 1, and its namespaces. */
function readInitInfo(child: ChildProcess, output: OutputTail, signal?: AbortSignal): Promise<InitInfo> {
  const stream = child.stdio[infoFd] as Readable | null;
  if (!stream) return Promise.reject(new Error('bwrap was started without its info pipe'));
  return new Promise<InitInfo>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => finish(new Error(`bwrap did not report within ${startTimeoutMs} ms`)), startTimeoutMs);
    const onAbort = () => finish(signal?.reason ?? new Error('aborted'));
    const onExit = () => finish(new AppError('SANDBOX_UNAVAILABLE', `bwrap failed: ${output.text() || 'no output'}`));
    const finish = (error: unknown, info?: InitInfo) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      child.off('close', onExit);
      stream.removeAllListeners('data');
      if (info) resolve(info);
      else reject(error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('close', onExit);
    child.once('error', (error) => finish(error));
    stream.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      try {
        const parsed = JSON.parse(text) as Record<string, unknown>;
        const childPid = parsed['child-pid'];
        const pidNamespace = parsed['pid-namespace'];
        if (typeof childPid !== 'number' || typeof pidNamespace !== 'number') {
          finish(new Error(`unexpected bwrap info: ${text}`));
          return;
        }
        finish(null, { childPid, pidNamespace, cgroupNamespace: typeof parsed['cgroup-namespace'] === 'number' });
      } catch {
        // incomplete JSON: wait for more
      }
    });
  });
}

/**
 * Waits until the gateway bridge listens on 127.0.0.1:port in the sandbox's network namespace, by
 * reading the namespace's TCP table through the init's /proc entry: no process to spawn.
 */
async function waitForBridge(child: ChildProcess, initPid: number, port: number, output: OutputTail, signal?: AbortSignal): Promise<void> {
  const listening = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`;
  const deadline = Date.now() + startTimeoutMs;
  for (let attempt = 0; ; attempt += 1) {
    signal?.throwIfAborted();
    const table = await readFile(`/proc/${initPid}/net/tcp`, 'utf8').catch(() => '');
    if (table.includes(listening)) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new AppError('SANDBOX_UNAVAILABLE', `sandbox exited while starting: ${output.text() || 'no output'}`);
    }
    if (Date.now() > deadline) throw new Error(`gateway bridge did not listen within ${startTimeoutMs} ms: ${output.text()}`);
    await new Promise((resolve) => setTimeout(resolve, attempt < 20 ? 2 : 10));
  }
}

export function validateSpec(spec: SandboxSpec): void {
  validateWorkspaceId(spec.workspaceId);
  const { memoryMb, cpus, pids } = spec.limits ?? ({} as SandboxLimits);
  if (!Number.isInteger(memoryMb) || memoryMb < 16) throw new AppError('BAD_REQUEST', 'limits.memoryMb must be an integer ≥ 16');
  if (!Number.isInteger(pids) || pids < 8) throw new AppError('BAD_REQUEST', 'limits.pids must be an integer ≥ 8');
  if (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus <= 0) throw new AppError('BAD_REQUEST', 'limits.cpus must be > 0');
  if (typeof spec.gatewaySocket !== 'string' || !path.isAbsolute(spec.gatewaySocket)) {
    throw new AppError('BAD_REQUEST', 'gatewaySocket must be an absolute path');
  }
}

export function validateWorkspaceId(workspaceId: string): void {
  if (typeof workspaceId !== 'string' || !workspaceIdPattern.test(workspaceId)) {
    throw new AppError('BAD_REQUEST', 'workspaceId must be 1-128 letters, digits, ".", "_" or "-"');
  }
}

async function assertSocket(socketPath: string): Promise<void> {
  const stats = await stat(socketPath).catch(() => null);
  if (!stats?.isSocket()) throw new AppError('SANDBOX_UNAVAILABLE', `gateway socket not found: ${socketPath}`);
}

function toolCheck(name: string, found: string | null, fix: string): BackendCheck {
  return found ? { name, ok: true, detail: found } : { name, ok: false, detail: `${name} not found`, fix };
}

function cgroupFix(limit: CgroupController): string {
  return (
    `let the server write the ${limit} cgroup controller: cgroup v2 with "+${limit}" in /sys/fs/cgroup/cgroup.subtree_control, ` +
    `or cgroup v1 with /sys/fs/cgroup/${limit} mounted read-write (in a container: --cgroupns=host and a writable /sys/fs/cgroup)`
  );
}

async function findExecutable(name: string): Promise<string | null> {
  for (const directory of hostSearchPath) {
    const candidate = path.join(directory, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return null;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
