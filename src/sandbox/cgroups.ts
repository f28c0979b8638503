import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SandboxLimits } from '../core/sandbox.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import { readMounts } from './mount-table.ts';

/** A cgroup controller that holds one of the SandboxLimits. */
export type CgroupController = 'memory' | 'pids' | 'cpu';

export interface CgroupSupport {
  /** `v1` (one hierarchy per controller), `v2` (unified), or null when no controller is usable. */
  version: 'v1' | 'v2' | null;
  /** The controllers whose limits this host lets us write. */
  controllers: Record<CgroupController, boolean>;
  /** Directory of the `agentyard` parent cgroup holding each usable controller's sandbox cgroups. */
  parents: Partial<Record<CgroupController, string>>;
  /** Why some controller is not usable, when one is not. */
  reason?: string;
  /** Directory of the parent cgroup whose children can be frozen (v1 `freezer` hierarchy, or v2's), when there is one. */
  freezer?: string;
}

export interface HostCgroupsOptions {
  /** Where cgroup file systems are mounted; only used to find v2's unified hierarchy. */
  root?: string;
  /** Name of the parent cgroup holding one cgroup per sandbox. */
  parentName?: string;
  logger?: Logger;
}

const controllers: CgroupController[] = ['memory', 'pids', 'cpu'];
const cpuPeriodMicros = 100_000;
const noSupport = (reason: string): CgroupSupport => ({
  version: null,
  controllers: { memory: false, pids: false, cpu: false },
  parents: {},
  reason,
});

/** Finds which cgroup hierarchies the host lets us write, and creates per-sandbox cgroups in them. */
export function createHostCgroups(options: HostCgroupsOptions = {}): HostCgroups {
  return new HostCgroups(options);
}

export class HostCgroups {
  private readonly root: string;
  private readonly parentName: string;
  private readonly logger: Logger;
  private support: Promise<CgroupSupport> | undefined;
  /** v1: controller → directory of the parent cgroup in that controller's hierarchy. */
  private v1Parents = new Map<CgroupController, string>();
  private v2Parent: string | undefined;
  /** v1: the parent cgroup in the freezer hierarchy, when that hierarchy is mounted apart from the limit controllers. */
  private v1FreezerParent: string | undefined;

  constructor(options: HostCgroupsOptions) {
    this.root = options.root ?? '/sys/fs/cgroup';
    this.parentName = options.parentName ?? 'agentyard';
    this.logger = options.logger ?? silentLogger;
  }

  /** Detects once (creating the parent cgroup and probing a child) what this host supports. */
  detect(): Promise<CgroupSupport> {
    this.support ??= this.probe().then(
      async (support) => {
        await this.pruneStale(support).catch((error: unknown) => this.logger.warn({ error }, 'could not prune stale cgroups'));
        return support;
      },
      (error: unknown) => noSupport(`cgroup detection failed: ${String(error)}`),
    );
    return this.support;
  }

  /**
   * Removes cgroups left by a server that died without releasing (its sandboxes died with it). A live
   * sandbox's cgroup always holds its init, so only empty ones older than a minute are removed.
   */
  private async pruneStale(support: CgroupSupport): Promise<void> {
    const cutoff = Date.now() - 60_000;
    for (const parent of new Set([...Object.values(support.parents), ...(support.freezer ? [support.freezer] : [])])) {
      for (const entry of await readdir(parent, { withFileTypes: true })) {
        if (!entry.isDirectory() || !/^(sbx|probe)[-_]/.test(entry.name)) continue;
        const directory = path.join(parent, entry.name);
        try {
          const [stats, procs] = await Promise.all([stat(directory), readFile(path.join(directory, 'cgroup.procs'), 'utf8')]);
          if (procs.trim() !== '' || stats.mtimeMs >= cutoff) continue;
          await rmdir(directory);
          this.logger.info({ cgroup: directory }, 'removed stale sandbox cgroup');
        } catch {
          // another server pruned it, or it came alive: leave it
        }
      }
    }
  }

  /** Creates the cgroup of one sandbox with its limits; null when the host has no usable controller. */
  async create(name: string, limits: SandboxLimits): Promise<SandboxCgroup | null> {
    const support = await this.detect();
    if (support.version === null) return null;
    if (!/^[A-Za-z0-9_.-]{1,200}$/.test(name)) throw new Error(`invalid cgroup name: ${name}`);
    const cgroup =
      support.version === 'v2'
        ? new SandboxCgroup('v2', [{ directory: path.join(this.v2Parent!, name), controllers: enabledOf(support) }], support.freezer ? path.join(this.v2Parent!, name) : null)
        : this.v1Cgroup(name);
    try {
      await cgroup.make(limits);
    } catch (error) {
      await cgroup.remove().catch(() => undefined);
      throw error;
    }
    return cgroup;
  }

  /** One entry per v1 hierarchy in use (co-mounted controllers share a directory), plus the freezer's. */
  private v1Cgroup(name: string): SandboxCgroup {
    const byParent = new Map<string, CgroupController[]>();
    for (const [controller, parent] of this.v1Parents) byParent.set(parent, [...(byParent.get(parent) ?? []), controller]);
    const entries: CgroupEntry[] = [...byParent].map(([parent, names]) => ({ directory: path.join(parent, name), controllers: names }));
    const freezer = this.v1FreezerParent ? path.join(this.v1FreezerParent, name) : null;
    if (freezer && !entries.some((entry) => entry.directory === freezer)) entries.push({ directory: freezer, controllers: [] });
    return new SandboxCgroup('v1', entries, freezer);
  }

  private async probe(): Promise<CgroupSupport> {
    const unified = path.join(this.root, 'cgroup.controllers');
    if (await exists(unified)) return this.probeV2();
    return this.probeV1();
  }

  private async probeV1(): Promise<CgroupSupport> {
    const mounts = await readV1Mounts();
    const support = noSupport('');
    const reasons: string[] = [];
    for (const controller of controllers) {
      const mountPoint = mounts.get(controller);
      if (mountPoint === undefined) {
        reasons.push(`${controller}: no cgroup v1 hierarchy mounted`);
        continue;
      }
      const parent = path.join(mountPoint, this.parentName);
      try {
        await mkdir(parent, { recursive: true });
        const probe = path.join(parent, `probe-${randomBytes(6).toString('hex')}`);
        await mkdir(probe);
        try {
          await writeLimitV1(probe, controller, { memoryMb: 64, pids: 64, cpus: 1 });
        } finally {
          await rmdir(probe).catch(() => undefined);
        }
        this.v1Parents.set(controller, parent);
        support.controllers[controller] = true;
        support.parents[controller] = parent;
      } catch (error) {
        reasons.push(`${controller}: ${errorMessage(error)}`);
      }
    }
    if (this.v1Parents.size > 0) support.version = 'v1';
    const freezerMount = mounts.get('freezer');
    if (support.version && freezerMount !== undefined) {
      const parent = path.join(freezerMount, this.parentName);
      try {
        await mkdir(parent, { recursive: true });
        await access(path.join(parent, 'freezer.state'), constants.W_OK);
        this.v1FreezerParent = parent;
        support.freezer = parent;
      } catch (error) {
        reasons.push(`freezer: ${errorMessage(error)}`);
      }
    }
    if (reasons.length > 0) support.reason = reasons.join('; ');
    else delete support.reason;
    this.logger.debug({ support }, 'cgroup v1 support detected');
    return support;
  }

  private async probeV2(): Promise<CgroupSupport> {
    const available = (await readFile(path.join(this.root, 'cgroup.controllers'), 'utf8')).split(/\s+/);
    const parent = path.join(this.root, this.parentName);
    const reasons: string[] = [];
    const wanted = controllers.filter((controller) => {
      if (available.includes(controller)) return true;
      reasons.push(`${controller}: not in ${this.root}/cgroup.controllers`);
      return false;
    });
    try {
      await mkdir(parent, { recursive: true });
    } catch (error) {
      return noSupport(`cannot create ${parent}: ${errorMessage(error)}`);
    }
    const support = noSupport('');
    for (const controller of wanted) {
      try {
        // Both the root and our parent must delegate the controller to their children.
        await enableController(this.root, controller);
        await enableController(parent, controller);
        support.controllers[controller] = true;
      } catch (error) {
        reasons.push(`${controller}: ${errorMessage(error)}`);
      }
    }
    const probe = path.join(parent, `probe-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(probe);
      for (const controller of controllers) {
        if (support.controllers[controller]) await writeLimitV2(probe, controller, { memoryMb: 64, pids: 64, cpus: 1 });
      }
    } catch (error) {
      return noSupport(`cannot write limits under ${parent}: ${errorMessage(error)}`);
    } finally {
      await rmdir(probe).catch(() => undefined);
    }
    this.v2Parent = parent;
    support.version = 'v2';
    // cgroup.freeze exists in every non-root v2 cgroup since Linux 5.2.
    if (await exists(path.join(parent, 'cgroup.freeze'))) support.freezer = parent;
    for (const controller of enabledOf(support)) support.parents[controller] = parent;
    if (reasons.length > 0) support.reason = reasons.join('; ');
    else delete support.reason;
    this.logger.debug({ support }, 'cgroup v2 support detected');
    return support;
  }
}

/** One directory of a sandbox's cgroup and the controllers whose limits are written in it. */
export interface CgroupEntry {
  directory: string;
  controllers: CgroupController[];
}

/** The cgroup (one directory per hierarchy) that every process of one sandbox joins. */
export class SandboxCgroup {
  constructor(
    readonly version: 'v1' | 'v2',
    private readonly entries: CgroupEntry[],
    /** The directory whose freezer holds every process of the sandbox, or null when the host has none. */
    private readonly freezerDirectory: string | null = null,
  ) {}

  get canFreeze(): boolean {
    return this.freezerDirectory !== null;
  }

  /** Freezes every process of the cgroup (they keep their memory, use no CPU) and waits until they are. */
  async freeze(timeoutMs = 5_000): Promise<void> {
    await this.setFrozen(true, timeoutMs);
  }

  async thaw(timeoutMs = 5_000): Promise<void> {
    await this.setFrozen(false, timeoutMs);
  }

  /** Whether the cgroup is frozen now. */
  async frozen(): Promise<boolean> {
    const directory = this.freezerDirectory;
    if (!directory) return false;
    if (this.version === 'v1') return (await readFile(path.join(directory, 'freezer.state'), 'utf8')).trim() === 'FROZEN';
    return /^frozen 1$/m.test(await readFile(path.join(directory, 'cgroup.events'), 'utf8'));
  }

  private async setFrozen(frozen: boolean, timeoutMs: number): Promise<void> {
    const directory = this.freezerDirectory;
    if (!directory) throw new Error('this host has no cgroup freezer');
    if (this.version === 'v1') await writeFile(path.join(directory, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED');
    else await writeFile(path.join(directory, 'cgroup.freeze'), frozen ? '1' : '0');
    const deadline = Date.now() + timeoutMs;
    // v1 passes through FREEZING while tasks stop; v2 reports `frozen 1` in cgroup.events once all have.
    while ((await this.frozen()) !== frozen) {
      if (Date.now() > deadline) throw new Error(`cgroup did not ${frozen ? 'freeze' : 'thaw'} within ${timeoutMs} ms`);
      if (this.version === 'v1' && frozen) await writeFile(path.join(directory, 'freezer.state'), 'FROZEN');
      await sleep(5);
    }
  }

  /** Processes the kernel has killed in this cgroup for going over its memory limit (0 without a memory controller). */
  async oomKills(): Promise<number> {
    const entry = this.entries.find((candidate) => candidate.controllers.includes('memory'));
    if (!entry) return 0;
    return (await readOomKillCount(path.join(entry.directory, oomCountFile[this.version]))) ?? 0;
  }

  /** The cgroup's directories: one per v1 hierarchy, or the one v2 directory. */
  get directories(): string[] {
    return this.entries.map((entry) => entry.directory);
  }

  /** The `cgroup.procs` files a process writes its pid into to join the sandbox's cgroup. */
  get procsFiles(): string[] {
    return this.directories.map((directory) => path.join(directory, 'cgroup.procs'));
  }

  async make(limits: SandboxLimits): Promise<void> {
    for (const { directory, controllers: names } of this.entries) {
      await mkdir(directory);
      for (const controller of names) {
        if (this.version === 'v2') await writeLimitV2(directory, controller, limits);
        else await writeLimitV1(directory, controller, limits);
      }
    }
  }

  /** Host pids of every process in the cgroup. */
  async pids(): Promise<number[]> {
    const all = new Set<number>();
    for (const file of this.procsFiles) {
      const text = await readFile(file, 'utf8').catch(() => '');
      for (const line of text.split('\n')) if (line.trim()) all.add(Number(line));
    }
    return [...all];
  }

  /** SIGKILLs every process in the cgroup until it is empty (v2: cgroup.kill). */
  async killAll(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // A frozen v1 task only dies once thawed.
    if (this.freezerDirectory) await this.thaw(timeoutMs).catch(() => undefined);
    if (this.version === 'v2') {
      await writeFile(path.join(this.directories[0]!, 'cgroup.kill'), '1').catch(() => undefined);
    }
    for (;;) {
      const pids = await this.pids();
      if (pids.length === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      if (Date.now() > deadline) throw new Error(`processes still in cgroup after ${timeoutMs} ms: ${pids.join(' ')}`);
      await sleep(10);
    }
  }

  /** Removes the cgroup's directories; retries while the last processes finish exiting. */
  async remove(): Promise<void> {
    for (const directory of this.directories) {
      for (let attempt = 0; ; attempt += 1) {
        try {
          await rmdir(directory);
          break;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || attempt >= 100) throw error;
          await sleep(20);
        }
      }
    }
  }
}

async function writeLimitV1(directory: string, controller: CgroupController, limits: SandboxLimits): Promise<void> {
  switch (controller) {
    case 'memory': {
      const bytes = String(limits.memoryMb * 1024 * 1024);
      await writeFile(path.join(directory, 'memory.limit_in_bytes'), bytes);
      // Without swap accounting the file is absent; with it, the limit must cover swap too.
      const swap = path.join(directory, 'memory.memsw.limit_in_bytes');
      if (await exists(swap)) await writeFile(swap, bytes);
      return;
    }
    case 'pids':
      await writeFile(path.join(directory, 'pids.max'), String(limits.pids));
      return;
    case 'cpu':
      await writeFile(path.join(directory, 'cpu.cfs_period_us'), String(cpuPeriodMicros));
      await writeFile(path.join(directory, 'cpu.cfs_quota_us'), String(cpuQuota(limits.cpus)));
      return;
  }
}

async function writeLimitV2(directory: string, controller: CgroupController, limits: SandboxLimits): Promise<void> {
  switch (controller) {
    case 'memory': {
      await writeFile(path.join(directory, 'memory.max'), String(limits.memoryMb * 1024 * 1024));
      const swap = path.join(directory, 'memory.swap.max');
      if (await exists(swap)) await writeFile(swap, '0');
      return;
    }
    case 'pids':
      await writeFile(path.join(directory, 'pids.max'), String(limits.pids));
      return;
    case 'cpu':
      await writeFile(path.join(directory, 'cpu.max'), `${cpuQuota(limits.cpus)} ${cpuPeriodMicros}`);
      return;
  }
}

async function enableController(directory: string, controller: CgroupController): Promise<void> {
  const enabled = (await readFile(path.join(directory, 'cgroup.subtree_control'), 'utf8')).split(/\s+/);
  if (!enabled.includes(controller)) await writeFile(path.join(directory, 'cgroup.subtree_control'), `+${controller}`);
}

/** The file of a memory cgroup whose `oom_kill N` line counts its OOM kills (Linux 4.13+ on v1). */
const oomCountFile = { v1: 'memory.oom_control', v2: 'memory.events' } as const;

/** The `oom_kill` count of a memory cgroup's file; null when it cannot be read (the cgroup is gone). */
export async function readOomKillCount(file: string): Promise<number | null> {
  const text = await readFile(file, 'utf8').catch(() => null);
  const match = text === null ? null : /^oom_kill (\d+)$/m.exec(text);
  return match ? Number(match[1]) : null;
}

/**
 * The OOM-kill count file of the memory cgroup a host process is in (a container's init, say), or null when this
 * host's cgroup tree does not show it.
 */
export async function oomCountFileOf(pid: number): Promise<string | null> {
  const membership = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  const v1 = /^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(.*)$/m.exec(membership)?.[1];
  if (v1 !== undefined) {
    const mount = (await readV1Mounts()).get('memory');
    return mount ? path.join(mount, v1, oomCountFile.v1) : null;
  }
  const v2 = /^0::(.*)$/m.exec(membership)?.[1];
  if (v2 === undefined) return null;
  const mount = (await readMounts()).find((entry) => entry.fsType === 'cgroup2')?.target;
  return mount ? path.join(mount, v2, oomCountFile.v2) : null;
}

/** Mount points of the v1 hierarchies holding each controller, from the mount table. */
async function readV1Mounts(): Promise<Map<CgroupController | 'freezer', string>> {
  const mounts = new Map<CgroupController | 'freezer', string>();
  for (const entry of await readMounts()) {
    if (entry.fsType !== 'cgroup' || entry.readOnly) continue;
    for (const name of ['freezer', ...controllers] as const) {
      if (entry.superOptions.includes(name) && !mounts.has(name)) mounts.set(name, entry.target);
    }
  }
  return mounts;
}

const enabledOf = (support: CgroupSupport): CgroupController[] =>
  controllers.filter((controller) => support.controllers[controller]);

const cpuQuota = (cpus: number): number => Math.max(1_000, Math.round(cpus * cpuPeriodMicros));

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function exists(file: string): Promise<boolean> {
  try {
    await access(file, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}
