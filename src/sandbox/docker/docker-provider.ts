import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { AppError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { silentLogger, type Logger } from '../../core/logger.ts';
import {
  sandboxOpenFileLimit,
  sandboxPaths,
  type BackendCheck,
  type Sandbox,
  type SandboxLimits,
  type SandboxProvider,
  type SandboxRuntime,
  type SandboxSpec,
  type WorkspaceFileAccess,
} from '../../core/sandbox.ts';
import { validateSpec, validateWorkspaceId } from '../local/local-provider.ts';
import { createWorkspaces, type Workspaces } from '../workspaces.ts';
import { connectDocker, dockerMessage, type DockerClient } from './docker-client.ts';
import { DockerSandbox } from './docker-sandbox.ts';
import { createSlotMounts, type SlotMounts } from './slot-mounts.ts';
import { WarmPool, type PoolKey } from './warm-pool.ts';

export interface DockerProviderOptions {
  /** Host directory holding `workspaces/<workspaceId>/{workspace,home}` (as the local backend) and pool slots. */
  dataDir: string;
  /** The sandbox image (`npm run sandbox-image` builds agentyard-sandbox:latest). */
  image: string;
  /**
   * OCI runtime of sandboxes whose spec names none: `runc` (default) or gVisor's `runsc`, which dockerd must know with
   * `--network=none --host-uds=open`.
   */
  runtime?: SandboxRuntime;
  /** DOCKER_HOST; the engine must share this host's file system (workspaces are bind mounts). */
  dockerHost?: string;
  /** The image's unprivileged user (64000 in the images built here). Never 0. */
  sandboxUid?: number;
  sandboxGid?: number;
  /** Port inside the sandbox at which the gateway bridge listens (default 4180). */
  gatewayPort?: number;
  /**
   * Warm runc containers kept ready per image and limits (default 0). Pooled containers get their workspace by
   * mount propagation at claim, which needs a local engine, root, and runc; otherwise every acquire starts cold.
   */
  poolSize?: number;
  /** Size of /tmp (a tmpfs), MiB; default half the memory limit. */
  tmpSizeMb?: number;
  /** Size limit of each workspace (with the agent's home), MiB, as a loop-mounted ext4 image; 0 or unset: none. */
  workspaceDiskMb?: number;
  /** Other server processes (replicas) share the data directory. */
  sharedDataDir?: boolean;
  /**
   * The replica this provider serves, when several share the engine: its containers carry its id, and the start-up
   * sweep leaves those of another replica alone unless `replicaGone` says that replica is gone.
   */
  replica?: { id: string; replicaGone(id: string): Promise<boolean> };
  logger?: Logger;
  maxFileBytes?: number;
}

const defaultUid = 64_000;
const startTimeoutMs = 20_000;
const labelPrefix = 'dev.agentyard';
const labels = {
  installation: `${labelPrefix}.installation`,
  role: `${labelPrefix}.role`,
  sandbox: `${labelPrefix}.sandbox`,
  workspace: `${labelPrefix}.workspace`,
  poolKey: `${labelPrefix}.pool-key`,
  replica: `${labelPrefix}.replica`,
} as const;
const gatewaySocketInside = '/run/agentyard/gateway.sock';

/** The Docker backend: one hardened container per conversation, over the Engine API. */
export function createDockerProvider(options: DockerProviderOptions): DockerProvider {
  return new DockerProvider(options);
}

export class DockerProvider implements SandboxProvider {
  readonly kind = 'docker' as const;
  /** The default runtime; a spec may ask for any of `runtimes`. */
  readonly runtime: SandboxRuntime;
  readonly runtimes = ['runc', 'runsc'] as const;
  private readonly logger: Logger;
  private readonly uid: number;
  private readonly gid: number;
  private readonly gatewayPort: number;
  /** Label value naming this installation (its data directory), so that two installations on one engine keep apart. */
  private readonly installation: string;
  private readonly live = new Map<string, DockerSandbox>();
  private readonly starting = new Set<string>();
  private readonly pool: WarmPool;
  private readonly slots: SlotMounts;
  private readonly workspaces: Workspaces;
  private client: Promise<DockerClient> | undefined;
  private ready: Promise<void> | undefined;
  private events: NodeJS.ReadableStream | undefined;
  private closed = false;

  constructor(private readonly options: DockerProviderOptions) {
    this.runtime = options.runtime ?? 'runc';
    this.logger = (options.logger ?? silentLogger).child({ sandboxBackend: 'docker', runtime: this.runtime });
    this.uid = options.sandboxUid ?? defaultUid;
    this.gid = options.sandboxGid ?? this.uid;
    this.gatewayPort = options.gatewayPort ?? 4180;
    if (!Number.isInteger(this.uid) || this.uid <= 0 || !Number.isInteger(this.gid) || this.gid <= 0) {
      throw new AppError('BAD_REQUEST', 'sandboxUid and sandboxGid must be positive integers (never root)');
    }
    this.installation = createHash('sha256').update(path.resolve(options.dataDir)).digest('hex').slice(0, 16);
    this.slots = createSlotMounts({ directory: path.resolve(options.dataDir, 'docker', 'slots'), logger: this.logger });
    this.workspaces = createWorkspaces({
      dataDir: options.dataDir,
      uid: this.uid,
      gid: this.gid,
      ...(options.maxFileBytes !== undefined ? { maxFileBytes: options.maxFileBytes } : {}),
      ...(options.workspaceDiskMb !== undefined ? { diskMb: options.workspaceDiskMb } : {}),
      ...(options.sharedDataDir ? { shared: true } : {}),
      logger: this.logger,
    });
    this.pool = new WarmPool({
      size: options.poolSize ?? 0,
      create: (key) => this.createPooled(key),
      destroy: (container) => this.destroyPooled(container),
      logger: this.logger,
    });
  }

  async acquire(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox> {
    if (this.closed) throw new AppError('SANDBOX_UNAVAILABLE', 'sandbox provider is closed');
    validateSpec(spec);
    signal?.throwIfAborted();
    const { workspaceId } = spec;
    if (this.live.has(workspaceId) || this.starting.has(workspaceId)) {
      throw new AppError('CONFLICT', `workspace ${workspaceId} already has a live sandbox`);
    }
    this.starting.add(workspaceId);
    const startedAt = performance.now();
    const id = newId('sbx');
    let container: Dockerode.Container | undefined;
    let slot: string | null = null;
    try {
      const docker = await this.docker();
      await this.start();
      await assertSocket(spec.gatewaySocket);
      const directories = await this.workspaces.prepare(workspaceId);
      signal?.throwIfAborted();
      const runtime = spec.runtime ?? this.runtime;
      const key = this.poolKey(spec.limits);
      // Only runc containers are pooled (gVisor does not see mounts made after it started).
      const pooled = runtime === 'runc' && (await this.poolUsable());
      const claimed = pooled ? this.pool.claim(key) : null;
      let how: 'claimed' | 'cold';
      if (claimed) {
        container = docker.getContainer(claimed.containerId);
        slot = claimed.slot;
        await this.slots.attach(slot, { workspace: directories.workspace, home: directories.home, gatewaySocket: spec.gatewaySocket });
        how = 'claimed';
      } else {
        container = await docker.createContainer(
          this.containerConfig({ id, role: 'sandbox', runtime, limits: spec.limits, workspaceId, extraLabels: spec.labels, mounts: this.directMounts(directories, spec.gatewaySocket) }),
        );
        await container.start();
        await this.waitForBridge(container, runtime, signal);
        how = 'cold';
      }
      // Keep the pool topped up for the next conversation with these limits.
      if (pooled) this.pool.fill(key);
      const sandbox = new DockerSandbox({
        id,
        workspaceId,
        gatewayUrl: `http://127.0.0.1:${this.gatewayPort}`,
        container,
        files: this.workspaceFiles(workspaceId),
        uid: this.uid,
        gid: this.gid,
        emulateTty: runtime === 'runsc',
        disk: () => this.workspaces.usage(workspaceId),
        logger: this.logger,
        onReleased: async (released) => {
          if (slot) await this.slots.remove(slot).catch((error: unknown) => this.logger.warn({ error, slot }, 'could not remove a pool slot'));
          if (this.live.get(workspaceId) === released) this.live.delete(workspaceId);
        },
      });
      if (this.closed) {
        await sandbox.release();
        throw new AppError('SANDBOX_UNAVAILABLE', 'sandbox provider is closed');
      }
      this.live.set(workspaceId, sandbox);
      this.logger.info({ sandboxId: id, workspaceId, containerId: container.id, how, labels: spec.labels, ms: Math.round(performance.now() - startedAt) }, 'sandbox acquired');
      return sandbox;
    } catch (error) {
      if (container) await container.remove({ force: true }).catch(() => undefined);
      if (slot) await this.slots.remove(slot).catch(() => undefined);
      if (signal?.aborted) throw signal.reason;
      if (error instanceof AppError) throw error;
      this.logger.error({ workspaceId, error: dockerMessage(error) }, 'sandbox start failed');
      throw new AppError('SANDBOX_UNAVAILABLE', `could not start a docker sandbox: ${dockerMessage(error)}`, { backend: 'docker', workspaceId }, { cause: error });
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
    type EngineInfo = { Runtimes?: Record<string, unknown>; MemoryLimit?: boolean; PidsLimit?: boolean; CpuCfsQuota?: boolean; ServerVersion?: string };
    let info: EngineInfo | null = null;
    try {
      const docker = await this.docker();
      info = (await docker.info()) as EngineInfo;
      checks.push({ name: 'docker engine', ok: true, detail: `Docker ${info?.ServerVersion ?? '?'} at ${this.options.dockerHost ?? 'unix:///var/run/docker.sock'}` });
    } catch (error) {
      checks.push({
        name: 'docker engine',
        ok: false,
        detail: `not reachable: ${dockerMessage(error)}`,
        fix: 'install docker.io and start dockerd, or set DOCKER_HOST to a reachable engine on this host',
      });
      return checks;
    }
    const runtimes = Object.keys(info?.Runtimes ?? {});
    const hasRuntime = runtimes.includes(this.runtime);
    checks.push({
      name: 'docker runtime',
      ok: hasRuntime,
      detail: hasRuntime ? `${this.runtime} (engine has ${runtimes.join(', ')})` : `${this.runtime} is not configured (engine has ${runtimes.join(', ')})`,
      ...(hasRuntime
        ? {}
        : { fix: 'apt-get install runsc, then add {"runtimes":{"runsc":{"path":"/usr/bin/runsc","runtimeArgs":["--network=none","--host-uds=open"]}}} to /etc/docker/daemon.json and restart dockerd' }),
    });
    const image = await (await this.docker()).getImage(this.options.image).inspect().then(
      (inspected) => ({ ok: true, detail: `${this.options.image} (${inspected.Id.slice(7, 19)})` }),
      (error: unknown) => ({ ok: false, detail: `${this.options.image}: ${dockerMessage(error)}` }),
    );
    checks.push({ name: 'sandbox image', ...image, ...(image.ok ? {} : { fix: 'run `npm run sandbox-image` (builds it offline), or set AGENTYARD_SANDBOX_IMAGE' }) });
    const limit = (name: string, ok: boolean | undefined, detail: string, fix: string): BackendCheck =>
      ok ? { name, ok: true, detail } : { name, ok: false, detail: `not enforced: ${fix}`, fix };
    // gVisor runs every process of a sandbox in one host process: the pids cgroup sees its threads, not the
    // agent's processes, and memory is enforced on the whole sandbox.
    const gvisor = this.runtime === 'runsc';
    checks.push(
      limit(
        'limits.memory',
        info?.MemoryLimit && !gvisor,
        'memory cgroup',
        gvisor
          ? 'gVisor has no OOM killer of its own: going over the limit makes the host kill the whole sandbox, not the process'
          : 'the engine reports no memory cgroup',
      ),
      limit('limits.pids', info?.PidsLimit && !gvisor, 'pids cgroup', gvisor ? 'the pids cgroup counts the gVisor sandbox\'s host threads, not the processes inside: a fork bomb ends the whole sandbox' : 'the engine reports no pids cgroup'),
      limit('limits.cpu', info?.CpuCfsQuota, 'CFS quota', 'the engine reports no CFS quota'),
    );
    const poolDetail = await this.poolUsable().then(
      (usable) => (usable ? `${this.options.poolSize ?? 0} warm runc containers per image and limits` : 'off'),
      () => 'off',
    );
    checks.push({ name: 'warm pool', ok: true, detail: poolDetail });
    checks.push(await this.workspaces.check());
    return checks;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.live.values()].map((sandbox) => sandbox.release()));
    await this.pool.close();
    await this.slots.close();
    await this.workspaces.close();
    (this.events as { destroy?: () => void } | undefined)?.destroy?.();
  }

  /** How many warm containers the pool holds now, per key (for tests and the benchmark). */
  poolStatus(): Record<PoolKey, number> {
    return this.pool.status();
  }

  /** Waits until the pool holds its target for these limits (for tests and the benchmark). */
  async warmUp(limits: SandboxLimits): Promise<void> {
    await this.start();
    if (!(await this.poolUsable())) return;
    await this.pool.fillAndWait(this.poolKey(limits));
  }

  private docker(): Promise<DockerClient> {
    this.client ??= connectDocker(this.options.dockerHost);
    return this.client;
  }

  /** Once per provider: the start-up sweep of containers this installation left behind, then event watching. */
  private start(): Promise<void> {
    this.ready ??= this.sweep().catch((error: unknown) => {
      this.ready = undefined;
      throw new AppError('SANDBOX_UNAVAILABLE', `the Docker engine is not usable: ${dockerMessage(error)}`, { backend: 'docker' }, { cause: error });
    });
    return this.ready;
  }

  /**
   * Finds this installation's containers by label. Pool containers of a key still wanted (same image and
   * runtime, running, not paused) are adopted into the pool; everything else is removed. A conversation's
   * container cannot be adopted: its gateway grant died with the old server; its workspace is on the host
   * and the next message resumes the Claude session in a new container.
   */
  private async sweep(): Promise<void> {
    const docker = await this.docker();
    const found = await docker.listContainers({ all: true, filters: { label: [`${labels.installation}=${this.installation}`] } });
    let adopted = 0;
    let removed = 0;
    const usable = this.pool.enabled && (await this.poolUsable());
    let othersLeft = 0;
    for (const info of found) {
      // Another replica's container, while that replica lives, is its own to keep or remove.
      const holder = info.Labels[labels.replica];
      if (holder && this.options.replica && holder !== this.options.replica.id && !(await this.options.replica.replicaGone(holder))) {
        othersLeft += 1;
        continue;
      }
      const key = info.Labels[labels.poolKey];
      const slot = info.Labels[`${labelPrefix}.slot`];
      // A claimed pool container keeps its pool labels and keeps running after a crash; it served a conversation (its
      // /tmp and processes live on), so it is told from a fresh one by the claim's mounts left in its slot, and removed.
      const adoptable =
        usable && info.Labels[labels.role] === 'pool' && info.State === 'running' && key?.startsWith(`${this.options.image}|runc|`) && key.endsWith(`|${sandboxOpenFileLimit}n`) && slot && (await this.slots.pristine(slot));
      if (adoptable && key && slot && this.pool.adopt(key as PoolKey, { containerId: info.Id, slot })) {
        adopted += 1;
        continue;
      }
      await docker.getContainer(info.Id).remove({ force: true, v: true }).catch(() => undefined);
      if (slot) await this.slots.remove(slot).catch(() => undefined);
      removed += 1;
    }
    // Slots of other replicas' pools are theirs (a shared data directory): pruned only when no other replica has any.
    if (usable && othersLeft === 0) {
      await this.slots.prune(new Set(this.pool.slots())).catch((error: unknown) => this.logger.warn({ error }, 'could not prune pool slots'));
    }
    if (found.length > 0) this.logger.info({ adopted, removed, othersLeft }, 'start-up sweep of sandbox containers');
    await this.watchEvents(docker);
  }

  /**
   * Engine events of this installation's containers: an OOM kill is counted on its sandbox (for the user's error
   * event); a sandbox whose container dies on its own (OOM of its init, docker kill) is freed, so its workspace can be
   * acquired again.
   */
  private async watchEvents(docker: DockerClient): Promise<void> {
    const stream = await docker.getEvents({ filters: { type: ['container'], event: ['die', 'oom'], label: [`${labels.installation}=${this.installation}`] } });
    this.events = stream;
    let buffer = '';
    stream.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        let event: { id?: string; Action?: string };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          continue; // not an event line
        }
        // Claimed pool containers carry no workspace label: find the sandbox by its container.
        const sandbox = [...this.live.values()].find((candidate) => candidate.containerId === event.id);
        if (event.Action === 'oom') sandbox?.noteOom();
        else if (event.id) {
          sandbox?.markGone();
          this.pool.forget(event.id);
        }
      }
    });
    stream.on('error', () => undefined);
    (stream as { unref?: () => void }).unref?.();
    const socket = (stream as { socket?: { unref?: () => void } }).socket;
    socket?.unref?.();
  }

  /** The warm pool (of runc containers) works by mount propagation into running containers: local engine, root. */
  private poolUsable(): Promise<boolean> {
    if (!this.pool.enabled || process.getuid?.() !== 0) return Promise.resolve(false);
    return this.slots.supported();
  }

  private poolKey(limits: SandboxLimits): PoolKey {
    return `${this.options.image}|runc|${limits.memoryMb}m|${limits.cpus}c|${limits.pids}p|${sandboxOpenFileLimit}n`;
  }

  /** A pool container: nothing of any user; its slot directories are empty until a claim mounts a workspace there. */
  private async createPooled(key: PoolKey): Promise<{ containerId: string; slot: string }> {
    const docker = await this.docker();
    const [, , memory, cpus, pids] = key.split('|');
    const limits = { memoryMb: parseFloat(memory!), cpus: parseFloat(cpus!), pids: parseFloat(pids!) };
    const id = newId('pool');
    const slot = await this.slots.create(id, this.uid, this.gid);
    try {
      const container = await docker.createContainer(
        this.containerConfig({ id, role: 'pool', runtime: 'runc', limits, poolKey: key, slot, mounts: this.slots.mountsFor(slot, { workspace: sandboxPaths.workspace, home: sandboxPaths.home, run: path.dirname(gatewaySocketInside) }) }),
      );
      try {
        await container.start();
        await this.waitForBridge(container, 'runc');
      } catch (error) {
        await container.remove({ force: true }).catch(() => undefined);
        throw error;
      }
      return { containerId: container.id, slot };
    } catch (error) {
      await this.slots.remove(slot).catch(() => undefined);
      throw error;
    }
  }

  private async destroyPooled(entry: { containerId: string; slot: string }): Promise<void> {
    const docker = await this.docker();
    await docker.getContainer(entry.containerId).remove({ force: true, v: true }).catch(() => undefined);
    await this.slots.remove(entry.slot).catch(() => undefined);
  }

  private directMounts(directories: { workspace: string; home: string }, gatewaySocket: string): Dockerode.MountConfig {
    return [
      { Type: 'bind', Source: directories.workspace, Target: sandboxPaths.workspace, ReadOnly: false },
      { Type: 'bind', Source: directories.home, Target: sandboxPaths.home, ReadOnly: false },
      { Type: 'bind', Source: gatewaySocket, Target: gatewaySocketInside, ReadOnly: false },
    ];
  }

  /** The hardened container: no capabilities, no new privileges, read-only root, no network, limits, capped logs. */
  private containerConfig(input: {
    id: string;
    role: 'sandbox' | 'pool';
    runtime: SandboxRuntime;
    limits: SandboxLimits;
    workspaceId?: string;
    poolKey?: PoolKey;
    slot?: string;
    extraLabels?: Record<string, string> | undefined;
    mounts: Dockerode.MountConfig;
  }): Dockerode.ContainerCreateOptions {
    const { limits } = input;
    const memoryBytes = limits.memoryMb * 1024 * 1024;
    const tmpMb = this.options.tmpSizeMb ?? Math.max(16, Math.floor(limits.memoryMb / 2));
    const containerLabels: Record<string, string> = {
      [labels.installation]: this.installation,
      ...(this.options.replica ? { [labels.replica]: this.options.replica.id } : {}),
      [labels.role]: input.role,
      [labels.sandbox]: input.id,
      ...(input.workspaceId ? { [labels.workspace]: input.workspaceId } : {}),
      ...(input.poolKey ? { [labels.poolKey]: input.poolKey } : {}),
      ...(input.slot ? { [`${labelPrefix}.slot`]: input.slot } : {}),
    };
    for (const [name, value] of Object.entries(input.extraLabels ?? {})) containerLabels[`${labelPrefix}.label.${name}`] = value;
    return {
      name: `agentyard-${input.id}`,
      Image: this.options.image,
      User: `${this.uid}:${this.gid}`,
      Hostname: 'agentyard',
      WorkingDir: sandboxPaths.workspace,
      Env: [`HOME=${sandboxPaths.home}`, `PATH=${sandboxPaths.bin}:/usr/local/bin:/usr/bin:/bin`],
      // tini reaps orphans; socat bridges 127.0.0.1:port to the gateway's unix socket, connecting per request.
      Entrypoint: ['/usr/bin/tini', '-s', '--'],
      Cmd: ['/usr/bin/socat', `TCP-LISTEN:${this.gatewayPort},bind=127.0.0.1,fork,reuseaddr,nodelay`, `UNIX-CONNECT:${gatewaySocketInside}`],
      Labels: containerLabels,
      NetworkDisabled: false,
      StopTimeout: 1,
      HostConfig: {
        Runtime: input.runtime,
        NetworkMode: 'none',
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges:true'],
        ReadonlyRootfs: true,
        Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${tmpMb}m,mode=1777` },
        ShmSize: 64 * 1024 * 1024,
        Memory: memoryBytes,
        MemorySwap: memoryBytes,
        NanoCpus: Math.round(limits.cpus * 1e9),
        // gVisor's own host threads count too; its sandbox processes are not host processes.
        PidsLimit: input.runtime === 'runsc' ? limits.pids + 256 : limits.pids,
        Ulimits: [
          { Name: 'core', Soft: 0, Hard: 0 },
          { Name: 'nofile', Soft: sandboxOpenFileLimit, Hard: sandboxOpenFileLimit },
        ],
        // The kernel's OOM killer picks a sandbox before the platform.
        OomScoreAdj: 500,
        IpcMode: 'private',
        LogConfig: { Type: 'local', Config: { 'max-size': '1m', 'max-file': '2' } },
        RestartPolicy: { Name: 'no' },
        Mounts: input.mounts,
      },
    };
  }

  /**
   * Waits until socat listens. With runc on this host the container's TCP table is read through its init's
   * /proc entry; otherwise (gVisor, a remote engine) a probe runs inside.
   */
  private async waitForBridge(container: Dockerode.Container, runtime: SandboxRuntime, signal?: AbortSignal): Promise<void> {
    const listening = `0100007F:${this.gatewayPort.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`;
    const deadline = Date.now() + startTimeoutMs;
    const inspected = await container.inspect();
    const pid = inspected.State.Pid;
    const viaProc = runtime === 'runc' && pid > 0 && (await stat(`/proc/${pid}/net/tcp`).then(() => true, () => false));
    // One exec that waits inside: under gVisor each exec costs about 100 ms.
    if (!viaProc && (await this.waitInside(container, listening))) return;
    for (let attempt = 0; ; attempt += 1) {
      signal?.throwIfAborted();
      const table = viaProc ? await readFile(`/proc/${pid}/net/tcp`, 'utf8').catch(() => '') : await this.readInside(container, '/proc/net/tcp');
      if (table.includes(listening)) return;
      if (Date.now() > deadline) throw new Error(`gateway bridge did not listen within ${startTimeoutMs} ms`);
      if (attempt % 20 === 19) {
        const state = (await container.inspect()).State;
        if (!state.Running) throw new Error(`sandbox container exited while starting (exit ${state.ExitCode}${state.OOMKilled ? ', out of memory' : ''})`);
      }
      await new Promise((resolve) => setTimeout(resolve, attempt < 20 ? 3 : 20));
    }
  }

  private async waitInside(container: Dockerode.Container, listening: string): Promise<boolean> {
    const script = `i=0; until grep -q '${listening}' /proc/net/tcp; do i=$((i+1)); [ $i -gt 1000 ] && exit 1; sleep 0.005; done; echo ready`;
    const output = await this.readInside(container, script, true);
    return output.includes('ready');
  }

  private async readInside(container: Dockerode.Container, file: string, isScript = false): Promise<string> {
    try {
      const exec = await container.exec({ Cmd: isScript ? ['/bin/sh', '-c', file] : ['/bin/cat', file], AttachStdout: true, AttachStderr: false, User: `${this.uid}:${this.gid}` });
      const stream = await exec.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      await new Promise<void>((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', () => resolve());
      });
      return Buffer.concat(chunks).toString('latin1');
    } catch {
      return '';
    }
  }

}

async function assertSocket(socketPath: string): Promise<void> {
  const stats = await stat(socketPath).catch(() => null);
  if (!stats?.isSocket()) throw new AppError('SANDBOX_UNAVAILABLE', `gateway socket not found: ${socketPath}`);
}
