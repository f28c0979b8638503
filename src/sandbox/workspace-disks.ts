import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, statfs, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { BackendCheck, SandboxPressure, WorkspaceFileAccess } from '../core/sandbox.ts';
import { isMountPoint } from './mount-table.ts';

const execFileAsync = promisify(execFile);

export interface WorkspaceDisksOptions {
  /** `<dataDir>/workspaces/<id>` is the mount point; images live in `<dataDir>/disks/<id>.ext4`. */
  dataDir: string;
  /** Size of each workspace's file system (workspace and home together), MiB. */
  sizeMb: number;
  /** Formatted empty images kept ready (default 2), so that a new workspace costs a rename and a mount. */
  spares?: number;
  /**
   * Other server processes (replicas) use the same data directory: a disk this process mounted may be in use by
   * another's sandbox after a takeover, so close() leaves the mounts in place (the next mount of the workspace reuses
   * them; removing a workspace unmounts it).
   */
  shared?: boolean;
  logger?: Logger;
}

/**
 * A size limit per workspace that the kernel enforces: each workspace directory is a loop-mounted ext4 image
 * (sparse, so unused space costs nothing). A full workspace gives the agent ENOSPC and leaves the host's disk and
 * every other workspace alone. Chosen over XFS project quotas because it needs no particular host file system
 * (this host's is ext4 without project quotas) and keeps the `workspaces/<id>/{workspace,home}` layout.
 */
export function createWorkspaceDisks(options: WorkspaceDisksOptions): WorkspaceDisks {
  return new WorkspaceDisks(options);
}

export class WorkspaceDisks {
  private readonly logger: Logger;
  private support: Promise<string | null> | undefined;
  private readonly pending = new Map<string, Promise<void>>();
  private readonly mounted = new Set<string>();
  /** Workspaces that predate disk limits and stay plain directories. */
  private readonly unlimited = new Set<string>();
  /** Paths of formatted, never mounted images of this size, ready to become a workspace's. */
  private readonly spares: string[] = [];
  private filling: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly options: WorkspaceDisksOptions) {
    this.logger = options.logger ?? silentLogger;
  }

  /** Null when per-workspace disks work here; otherwise why not (then workspaces are plain directories). */
  unsupported(): Promise<string | null> {
    this.support ??= this.probe();
    return this.support;
  }

  /**
   * Mounts the workspace's disk at `workspaces/<id>`, creating it on first use. A workspace that already holds
   * files without a disk (made before limits were on) is left as it is, unlimited.
   */
  ensure(workspaceId: string): Promise<void> {
    // Every file operation passes here: a disk this process mounted needs no look at the mount table.
    if (this.mounted.has(workspaceId) || this.unlimited.has(workspaceId)) return Promise.resolve();
    let running = this.pending.get(workspaceId);
    if (!running) {
      running = this.mount(workspaceId).finally(() => this.pending.delete(workspaceId));
      this.pending.set(workspaceId, running);
    }
    return running;
  }

  /** The workspace's file system size and free space; null when it has no disk (limits off, or it predates them). */
  async usage(workspaceId: string): Promise<SandboxPressure['disk']> {
    if (!this.mounted.has(workspaceId)) return null;
    const stats = await statfs(this.mountPoint(workspaceId)).catch(() => null);
    if (!stats) return null;
    return { sizeBytes: this.options.sizeMb * 1024 * 1024, freeBytes: stats.bavail * stats.bsize };
  }

  /** The workspace's files through its disk, mounted first when it is not yet (after a restart, before its next sandbox). */
  files(workspaceId: string, files: WorkspaceFileAccess): WorkspaceFileAccess {
    const mounted = () => this.ensure(workspaceId);
    return {
      list: async (relativePath, page) => (await mounted(), files.list(relativePath, page)),
      read: async (relativePath) => (await mounted(), files.read(relativePath)),
      write: async (relativePath, data, options) => (await mounted(), files.write(relativePath, data, options)),
    };
  }

  /** The `limits.disk` line of a backend's check; limits turned off by configuration are not a fault. */
  async check(): Promise<BackendCheck> {
    if (!this.enabled) return { name: 'limits.disk', ok: true, detail: 'off: workspaces have no size limit (AGENTYARD_WORKSPACE_DISK_MB is 0)' };
    const reason = await this.unsupported();
    return {
      name: 'limits.disk',
      ok: reason === null,
      detail: reason === null ? `${this.options.sizeMb} MiB per workspace (loop-mounted ext4)` : `not enforced: ${reason}`,
      ...(reason === null ? {} : { fix: 'run the server as root on a host with loop devices (or set AGENTYARD_WORKSPACE_DISK_MB=0 to run without limits)' }),
    };
  }

  private get enabled(): boolean {
    return this.options.sizeMb > 0;
  }

  /** Unmounts and deletes the workspace's disk. */
  async remove(workspaceId: string): Promise<void> {
    await this.pending.get(workspaceId)?.catch(() => undefined);
    const mountPoint = this.mountPoint(workspaceId);
    if (await isMountPoint(mountPoint)) await execFileAsync('umount', ['-l', mountPoint]);
    this.mounted.delete(workspaceId);
    this.unlimited.delete(workspaceId);
    await rm(this.image(workspaceId), { force: true });
  }

  /** Unmounts every disk this process mounted (the images, and the spare ones, stay); with `shared`, none. */
  async close(): Promise<void> {
    this.closed = true;
    await this.filling;
    if (this.options.shared) {
      this.mounted.clear();
      return;
    }
    for (const workspaceId of this.mounted) {
      await execFileAsync('umount', ['-l', this.mountPoint(workspaceId)]).catch(() => undefined);
    }
    this.mounted.clear();
  }

  private async mount(workspaceId: string): Promise<void> {
    if ((await this.unsupported()) !== null) return;
    const mountPoint = this.mountPoint(workspaceId);
    if (await isMountPoint(mountPoint)) {
      this.mounted.add(workspaceId);
      return;
    }
    const image = this.image(workspaceId);
    const hasImage = (await stat(image).catch(() => null))?.isFile() ?? false;
    await mkdir(mountPoint, { recursive: true, mode: 0o700 });
    if (!hasImage) {
      const existing = await readdir(mountPoint);
      if (existing.length > 0) {
        this.logger.warn({ workspaceId }, 'workspace predates disk limits; it stays unlimited');
        this.unlimited.add(workspaceId);
        return;
      }
      const spare = this.spares.pop();
      // A spare adopted from a process that is gone may have been taken by another process adopting it too.
      const renamed = spare ? await rename(spare, image).then(() => true, () => false) : false;
      if (!renamed) await this.format(image);
      this.fillSpares();
    }
    await execFileAsync('mount', ['-o', 'loop,nosuid,nodev,noatime', image, mountPoint]);
    this.mounted.add(workspaceId);
    // mkfs's lost+found is of no use here (e2fsck makes it again when it needs one); the layout stays workspace/ and home/.
    if (!hasImage) await rm(path.join(mountPoint, 'lost+found'), { recursive: true, force: true });
  }

  /** A new sparse image with an empty ext4 file system. */
  private async format(image: string): Promise<void> {
    await mkdir(path.dirname(image), { recursive: true, mode: 0o700 });
    await writeFile(image, '', { mode: 0o600 });
    await truncate(image, this.options.sizeMb * 1024 * 1024);
    // -m 0: no blocks reserved for root (nothing in the sandbox runs as root); lazy init keeps it to ~15 ms.
    await execFileAsync('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1', image]);
  }

  /** Tops the spare images up in the background, one at a time. */
  private fillSpares(): void {
    if (this.filling || this.closed) return;
    this.filling = (async () => {
      while (!this.closed && this.spares.length < (this.options.spares ?? 2)) {
        // The pid tells other processes on the data directory whose spare it is (see adoptSpares).
        const name = `${process.pid}-${this.options.sizeMb}m-${randomBytes(6).toString('hex')}.ext4`;
        // Named a spare only once complete, so that a crash meanwhile leaves nothing a later run would mount.
        const making = path.join(this.disksDirectory, `.making-${name}`);
        const spare = path.join(this.disksDirectory, `.spare-${name}`);
        await this.format(making);
        await rename(making, spare);
        this.spares.push(spare);
      }
    })()
      .catch((error: unknown) => this.logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'could not make a spare workspace disk'))
      .finally(() => (this.filling = null));
  }

  /**
   * Spares a previous run left: those of this size are used; others, and any it was still making, deleted. Those of
   * a process still running (another replica on the same data directory) are its own and left alone.
   */
  private async adoptSpares(): Promise<void> {
    for (const entry of await readdir(this.disksDirectory).catch(() => [] as string[])) {
      const match = /^\.(spare|making)-(?:(\d+)-)?(\d+)m-[0-9a-f]+\.ext4$/.exec(entry);
      if (!match) continue;
      // This process has made none yet (adopting comes first), so one named with its pid is an earlier process's.
      const maker = match[2] === undefined ? null : Number(match[2]);
      if (maker !== null && maker !== process.pid && processRunning(maker)) continue;
      if (match[1] === 'spare' && Number(match[3]) === this.options.sizeMb) this.spares.push(path.join(this.disksDirectory, entry));
      else await rm(path.join(this.disksDirectory, entry), { force: true });
    }
  }

  private get disksDirectory(): string {
    return path.join(this.options.dataDir, 'disks');
  }

  private async probe(): Promise<string | null> {
    if (process.getuid?.() !== 0) return 'needs root (loop mounts)';
    if (!this.enabled) return 'off (no size set)';
    if (this.options.sizeMb < 16) return `${this.options.sizeMb} MiB is too small for a workspace (16 MiB at least)`;
    const directory = this.disksDirectory;
    const probe = path.join(directory, `.probe-${process.pid}`);
    const mountPoint = `${probe}.mnt`;
    try {
      await mkdir(mountPoint, { recursive: true, mode: 0o700 });
      await writeFile(probe, '');
      await truncate(probe, 16 * 1024 * 1024);
      await execFileAsync('mkfs.ext4', ['-q', '-F', probe]);
      await execFileAsync('mount', ['-o', 'loop', probe, mountPoint]);
      await execFileAsync('umount', [mountPoint]);
      await this.adoptSpares();
      this.fillSpares();
      return null;
    } catch (error) {
      const reason = `loop-mounted ext4 images do not work here: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
      this.logger.warn({ reason }, 'workspace disk limits off');
      return reason;
    } finally {
      await rm(probe, { force: true }).catch(() => undefined);
      await rm(mountPoint, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Absolute, as the mount table has it. */
  private mountPoint(workspaceId: string): string {
    return path.resolve(this.options.dataDir, 'workspaces', workspaceId);
  }

  private image(workspaceId: string): string {
    return path.join(this.disksDirectory, `${workspaceId}.ext4`);
  }
}

/** Whether a process with this pid exists. */
function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
