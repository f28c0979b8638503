import { execFile } from 'node:child_process';
import { chown, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type Dockerode from 'dockerode';
import type { Logger } from '../../core/logger.ts';
import { mountsUnder, readMounts } from '../mount-table.ts';

const execFileAsync = promisify(execFile);
const slotPattern = /^pool_[A-Za-z0-9_-]+$/;

export interface SlotMountsOptions {
  /** Host directory of the slots; made a shared mount point so that mounts under it reach running containers. */
  directory: string;
  logger: Logger;
}

/**
 * Host directories through which a workspace reaches an already-running pool container. Each pool container
 * bind-mounts its slot's empty `workspace`, `home` and `run` with rslave propagation; a claim bind-mounts the
 * conversation's directories (and the gateway socket) over them on the host, and the kernel propagates those
 * mounts into the container. The workspace itself never moves: it stays in `workspaces/<id>`.
 */
export function createSlotMounts(options: SlotMountsOptions): SlotMounts {
  return new SlotMounts(options);
}

export class SlotMounts {
  private support: Promise<boolean> | undefined;

  constructor(private readonly options: SlotMountsOptions) {}

  /** Whether the slot directory is (or could be made) a shared mount: needs root and util-linux mount. */
  supported(): Promise<boolean> {
    this.support ??= this.makeShared().then(
      () => true,
      (error: unknown) => {
        this.options.logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'warm pool off: cannot make the slot directory a shared mount');
        return false;
      },
    );
    return this.support;
  }

  async create(name: string, uid: number, gid: number): Promise<string> {
    const slot = this.slotPath(name);
    for (const part of ['workspace', 'home']) {
      await mkdir(path.join(slot, part), { recursive: true, mode: 0o755 });
      await chown(path.join(slot, part), uid, gid);
    }
    await mkdir(path.join(slot, 'run'), { recursive: true, mode: 0o755 });
    // The mount point of the gateway socket; socat connects per request, so it only needs to be there at claim.
    await writeFile(path.join(slot, 'run', 'gateway.sock'), '', { mode: 0o644 });
    return name;
  }

  mountsFor(name: string, targets: { workspace: string; home: string; run: string }): Dockerode.MountConfig {
    const slot = this.slotPath(name);
    const bind = (source: string, target: string) => ({
      Type: 'bind' as const,
      Source: path.join(slot, source),
      Target: target,
      ReadOnly: false,
      BindOptions: { Propagation: 'rslave' as const },
    });
    return [bind('workspace', targets.workspace), bind('home', targets.home), bind('run', targets.run)];
  }

  /** Mounts a conversation's directories and gateway socket into a slot (and so into its running container). */
  async attach(name: string, sources: { workspace: string; home: string; gatewaySocket: string }): Promise<void> {
    const slot = this.slotPath(name);
    await mount(sources.workspace, path.join(slot, 'workspace'));
    await mount(sources.home, path.join(slot, 'home'));
    await mount(sources.gatewaySocket, path.join(slot, 'run', 'gateway.sock'));
  }

  /**
   * Whether a claim ever mounted a conversation into the slot: its mounts outlive a server that died, so a pool
   * container whose slot has none never served anyone. False when the mount table cannot be read.
   */
  async pristine(name: string): Promise<boolean> {
    return mountedUnder(this.slotPath(name)).then((mounted) => !mounted, () => false);
  }

  /** Unmounts whatever a claim mounted, then deletes the slot; refuses to delete while anything is still mounted under it. */
  async remove(name: string): Promise<void> {
    const slot = this.slotPath(name);
    for (const target of ['run/gateway.sock', 'home', 'workspace']) {
      // A stacked mount needs as many unmounts; -l detaches even while a process still uses it.
      for (let attempt = 0; attempt < 4 && (await mountedUnder(path.join(slot, target))); attempt += 1) {
        await execFileAsync('umount', ['-l', path.join(slot, target)]).catch(() => undefined);
      }
    }
    if (await mountedUnder(slot)) throw new Error(`still mounted under ${slot}; not deleting it`);
    await rm(slot, { recursive: true, force: true });
  }

  /** Deletes slots that no pool container holds (left by a server that died). */
  async prune(keep: Set<string>): Promise<void> {
    const entries = await readdir(this.options.directory).catch(() => []);
    for (const entry of entries) {
      if (slotPattern.test(entry) && !keep.has(entry)) await this.remove(entry).catch(() => undefined);
    }
  }

  private slotPath(name: string): string {
    if (!slotPattern.test(name)) throw new Error(`invalid slot name ${name}`);
    return path.join(this.options.directory, name);
  }

  /** Undoes the shared mount of the slot directory (this server's or a dead one's), once no slot is mounted under it. */
  async close(): Promise<void> {
    if (this.support === undefined) return;
    const directory = this.options.directory;
    const mounts = await readMounts();
    if (mounts.some((entry) => entry.target.startsWith(`${directory}/`))) return;
    if (mounts.some((entry) => entry.target === directory)) await execFileAsync('umount', [directory]).catch(() => undefined);
    this.support = undefined;
  }

  private async makeShared(): Promise<void> {
    const directory = this.options.directory;
    await mkdir(directory, { recursive: true, mode: 0o700 });
    const mounts = await readMounts();
    const own = mounts.find((entry) => entry.target === directory);
    if (own?.shared) return;
    if (!own) await execFileAsync('mount', ['--bind', directory, directory]);
    await execFileAsync('mount', ['--make-shared', directory]);
  }
}

async function mount(source: string, target: string): Promise<void> {
  await execFileAsync('mount', ['--bind', source, target]);
}

async function mountedUnder(directory: string): Promise<boolean> {
  return (await mountsUnder(directory)).length > 0;
}
