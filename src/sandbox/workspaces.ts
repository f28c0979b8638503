import { chmod, chown, lstat, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { BackendCheck, SandboxPressure, WorkspaceFileAccess } from '../core/sandbox.ts';
import { createWorkspaceDisks, type WorkspaceDisks } from './workspace-disks.ts';
import { createWorkspaceFiles } from './workspace-files.ts';

export interface WorkspacesOptions {
  dataDir: string;
  /** Owner of the workspace and home directories and of files written from the host: the sandbox user. */
  uid: number;
  gid: number;
  /** Largest file read or written through `files`, in bytes. */
  maxFileBytes?: number;
  /** Size limit of each workspace (with the agent's home), MiB; 0 or unset: none. */
  diskMb?: number;
  /** Other server processes use the same data directory (replicas): mounts outlive this process (WorkspaceDisks). */
  shared?: boolean;
  logger: Logger;
}

/**
 * The workspaces of one data directory, kept the same way by every backend: `<dataDir>/workspaces/<id>` holds
 * `workspace/` and the agent's `home/`, on a size-limited disk of its own when a size is set.
 */
export function createWorkspaces(options: WorkspacesOptions): Workspaces {
  return new Workspaces(options);
}

export class Workspaces {
  private readonly disks: WorkspaceDisks;

  constructor(private readonly options: WorkspacesOptions) {
    this.disks = createWorkspaceDisks({ dataDir: options.dataDir, sizeMb: options.diskMb ?? 0, shared: options.shared ?? false, logger: options.logger });
  }

  /** Mounts the workspace's disk and creates `workspace/` and `home/`, owned by the sandbox user; the parents stay root-only. */
  async prepare(workspaceId: string): Promise<{ workspace: string; home: string }> {
    await this.disks.ensure(workspaceId);
    const base = this.base(workspaceId);
    await mkdir(path.dirname(base), { recursive: true, mode: 0o700 });
    await mkdir(base, { recursive: true, mode: 0o700 });
    const directories = { workspace: path.join(base, 'workspace'), home: path.join(base, 'home') };
    for (const directory of Object.values(directories)) {
      await mkdir(directory, { recursive: true, mode: 0o700 });
      // lstat: the sandbox may not swap the directory itself for a symlink; it cannot (its parent is root's).
      const stats = await lstat(directory);
      if (!stats.isDirectory()) throw new AppError('INTERNAL', `workspace path is not a directory: ${directory}`);
      await chown(directory, this.options.uid, this.options.gid);
      await chmod(directory, 0o755);
    }
    return directories;
  }

  /** The workspace's files, confined to it, through its disk (mounted first after a restart, before its next sandbox). */
  files(workspaceId: string): WorkspaceFileAccess {
    const files = createWorkspaceFiles({
      root: path.join(this.base(workspaceId), 'workspace'),
      uid: this.options.uid,
      gid: this.options.gid,
      ...(this.options.maxFileBytes !== undefined ? { maxBytes: this.options.maxFileBytes } : {}),
    });
    return this.disks.files(workspaceId, files);
  }

  /** The workspace disk's size and free space; null when it has none. */
  usage(workspaceId: string): Promise<SandboxPressure['disk']> {
    return this.disks.usage(workspaceId);
  }

  /** Deletes the workspace, the agent state kept with it, and its disk. Its sandbox must be released first. */
  async remove(workspaceId: string): Promise<void> {
    await this.disks.remove(workspaceId);
    await rm(this.base(workspaceId), { recursive: true, force: true });
  }

  /** The `limits.disk` line of a backend's check. */
  check(): Promise<BackendCheck> {
    return this.disks.check();
  }

  /** Unmounts the disks this process mounted; every workspace stays. */
  close(): Promise<void> {
    return this.disks.close();
  }

  private base(workspaceId: string): string {
    return path.join(this.options.dataDir, 'workspaces', workspaceId);
  }
}
