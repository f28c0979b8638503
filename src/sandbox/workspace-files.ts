import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { lstat, open, opendir, mkdir, readlink, realpath, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { AppError } from '../core/errors.ts';
import { workspaceFileVersion } from '../core/file-version.ts';
import type { WorkspaceEntry, WorkspaceFileAccess, WorkspaceListing, WorkspacePageRequest } from '../core/sandbox.ts';
import { BoundedHeap } from './bounded-heap.ts';

export interface WorkspaceFilesOptions {
  /** Host directory that is the workspace root (mounted at /workspace in the sandbox). */
  root: string;
  /** Owner given to files and directories this module creates (the sandbox user). */
  uid?: number;
  gid?: number;
  /** Largest file read or written, in bytes. */
  maxBytes?: number;
}

const defaultMaxBytes = 16 * 1024 * 1024;
const defaultPageSize = 500;
/** Names read from a directory at once while listing it. */
const scanBatch = 4096;
/** Read sizes once a file turned out bigger than its size said. */
const minReadBytes = 64 * 1024;
const maxReadBytes = 1024 * 1024;
const maxNameBytes = 255;
const maxPathBytes = 4096;

/**
 * Reads and writes files of a workspace from the host, confined to the workspace root.
 *
 * The host runs as root and the workspace is controlled by the sandbox, so any component may be a
 * symlink the agent planted (an absolute one would resolve against the host's root). Every open is
 * checked after the fact through /proc/self/fd, so a swap between check and use cannot escape.
 */
export function createWorkspaceFiles(options: WorkspaceFilesOptions): WorkspaceFiles {
  return new WorkspaceFiles(options);
}

export class WorkspaceFiles implements WorkspaceFileAccess {
  private readonly maxBytes: number;

  constructor(private readonly options: WorkspaceFilesOptions) {
    this.maxBytes = options.maxBytes ?? defaultMaxBytes;
  }

  /**
   * One page of a directory ('' is the root); a workspace that was never used lists as empty. The directory is
   * streamed and only the page's entries are kept, so a directory of any size costs the same memory.
   */
  async list(relativePath: string, page: WorkspacePageRequest = {}): Promise<WorkspaceListing> {
    const limit = page.limit ?? defaultPageSize;
    if (!Number.isInteger(limit) || limit < 1) throw new AppError('BAD_REQUEST', 'limit must be a positive integer');
    const after = page.cursor ? parseCursor(page.cursor) : null;
    const segments = relativePath === '' || relativePath === '.' ? [] : parseWorkspacePath(relativePath);
    let root: string;
    try {
      root = await this.rootReal();
    } catch (error) {
      if (segments.length === 0) return { entries: [], nextCursor: null };
      throw error;
    }
    const target = await resolveInside(root, segments, relativePath);
    const handle = await openDirectory(target, relativePath);
    try {
      await assertHandleInside(root, handle, relativePath);
      const directory = `/proc/self/fd/${handle.fd}`;
      // One more than the page, to know whether another page follows.
      const smallest = new BoundedHeap<Position>(limit + 1, comparePositions);
      const stream = await opendir(directory, { bufferSize: scanBatch });
      try {
        // readSync, not `for await`: the async read costs a promise and a tick per entry, twice the time of a whole
        // scan of a big directory. A sync read blocks only for one batch of names (about a millisecond for 4,096 on
        // a local disk) when its buffer is empty; the scan lets other requests run after every batch.
        for (let count = 1, entry = stream.readSync(); entry !== null; count++, entry = stream.readSync()) {
          const position = { directory: entry.isDirectory(), folded: entry.name.toLowerCase(), name: entry.name };
          if (!after || comparePositions(position, after) > 0) smallest.offer(position);
          if (count % scanBatch === 0) await setImmediatePromise();
        }
      } finally {
        stream.closeSync();
      }
      const positions = smallest.sorted();
      const more = positions.length > limit;
      if (more) positions.pop();
      const listed = await Promise.all(
        positions.map(async ({ name }): Promise<WorkspaceEntry | null> => {
          const stats = await lstat(path.join(directory, name)).catch(() => null);
          if (!stats) return null; // removed while listing
          const type = stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : stats.isSymbolicLink() ? 'symlink' : 'other';
          return { name, type, size: type === 'file' ? stats.size : 0, modifiedAt: stats.mtime.toISOString() };
        }),
      );
      return {
        entries: listed.filter((entry): entry is WorkspaceEntry => entry !== null),
        nextCursor: more ? formatCursor(positions.at(-1)!) : null,
      };
    } catch (error) {
      throw fileError(error, relativePath);
    } finally {
      await handle.close();
    }
  }

  /**
   * Reads a regular file; symlinks are followed only while they stay inside the workspace. At most the size
   * limit and one byte are read from the one open descriptor, so a file growing meanwhile is refused, not buffered.
   */
  async read(relativePath: string): Promise<Buffer> {
    const root = await this.rootReal();
    const target = await resolveInside(root, parseWorkspacePath(relativePath), relativePath);
    let handle: FileHandle;
    try {
      handle = await open(target, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      throw fileError(error, relativePath);
    }
    try {
      await assertHandleInside(root, handle, relativePath);
      return await this.readOpen(handle, relativePath);
    } finally {
      await handle.close();
    }
  }

  /**
   * Writes a regular file, creating parent directories; refuses to write through a final symlink. With `ifMatch`,
   * the file in place must have one of those versions (`*`: must exist), or FILE_CHANGED and nothing is written.
   */
  async write(relativePath: string, data: Buffer | string, options: { ifMatch?: readonly string[] | '*' } = {}): Promise<void> {
    const segments = parseWorkspacePath(relativePath);
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length > this.maxBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `file is larger than ${this.maxBytes} bytes: ${relativePath}`);
    }
    const root = await this.rootReal();
    const name = segments.at(-1)!;
    const parent = await this.openParent(root, segments.slice(0, -1), relativePath);
    const inParent = (entry: string) => `/proc/self/fd/${parent.fd}/${entry}`;
    // Written to a new file beside the target, then renamed over it: a failed write (a full workspace) leaves the
    // old content as it was. The rename replaces a directory entry and never follows it.
    const temporary = `.agentyard-upload-${randomBytes(6).toString('hex')}`;
    let written = false;
    try {
      const existing = await lstat(inParent(name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return null;
        throw error;
      });
      if (existing?.isSymbolicLink()) throw new AppError('BAD_REQUEST', `path is a symlink: ${relativePath}`);
      if (existing?.isDirectory()) throw new AppError('BAD_REQUEST', `path is a directory: ${relativePath}`);
      if (existing && !existing.isFile()) throw new AppError('BAD_REQUEST', `not a regular file: ${relativePath}`);
      if (options.ifMatch) await this.assertVersion(root, inParent(name), existing !== null, options.ifMatch, relativePath);
      const handle = await open(inParent(temporary), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, existing ? existing.mode & 0o777 : 0o644);
      try {
        await assertHandleInside(root, handle, relativePath);
        await handle.writeFile(bytes);
        await this.chown(handle);
      } finally {
        await handle.close();
      }
      await rename(inParent(temporary), inParent(name));
      written = true;
    } catch (error) {
      throw fileError(error, relativePath);
    } finally {
      if (!written) await rm(inParent(temporary), { force: true }).catch(() => undefined);
      await parent.close();
    }
  }

  /** Opens (creating as needed) the directory holding the target, checking each step stays inside. */
  private async openParent(root: string, directories: string[], relativePath: string): Promise<FileHandle> {
    let current = await openDirectory(root, relativePath);
    try {
      for (const segment of directories) {
        const next = `/proc/self/fd/${current.fd}/${segment}`;
        try {
          await mkdir(next, { mode: 0o755 });
          const created = await openDirectory(next, relativePath);
          await this.chown(created).catch(async (error: unknown) => {
            await created.close();
            throw error;
          });
          await current.close();
          current = created;
          continue;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError(error, relativePath);
        }
        // The segment exists: it may be a directory or a symlink that must resolve inside the workspace.
        let resolved: string;
        try {
          resolved = await realpath(next);
        } catch (error) {
          throw fileError(error, relativePath);
        }
        assertInside(root, resolved, relativePath);
        const opened = await openDirectory(resolved, relativePath);
        await current.close();
        current = opened;
        await assertHandleInside(root, current, relativePath);
      }
      return current;
    } catch (error) {
      await current.close().catch(() => undefined);
      throw error;
    }
  }

  /** The file in place must be the version the writer read; between this check and the rename is a short window. */
  private async assertVersion(root: string, file: string, exists: boolean, ifMatch: readonly string[] | '*', relativePath: string): Promise<void> {
    const changed = new AppError('FILE_CHANGED', `the file changed since you read it; nothing was written: ${relativePath}`);
    if (!exists) throw new AppError('FILE_CHANGED', `the file no longer exists; nothing was written: ${relativePath}`);
    if (ifMatch === '*') return;
    const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? changed : error;
    });
    let current: Buffer;
    try {
      await assertHandleInside(root, handle, relativePath);
      current = await this.readOpen(handle, relativePath);
    } catch (error) {
      // Over the size limit now: it cannot be the version anyone read.
      if (error instanceof AppError && error.code === 'PAYLOAD_TOO_LARGE') throw changed;
      throw error;
    } finally {
      await handle.close();
    }
    if (!ifMatch.includes(workspaceFileVersion(current))) throw changed;
  }

  /** Reads an open regular file whole, but never more than the size limit and one byte. */
  private async readOpen(handle: FileHandle, relativePath: string): Promise<Buffer> {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new AppError('BAD_REQUEST', `not a regular file: ${relativePath}`);
    const tooLarge = () => new AppError('PAYLOAD_TOO_LARGE', `file is larger than ${this.maxBytes} bytes: ${relativePath}`);
    if (stats.size > this.maxBytes) throw tooLarge();
    const chunks: Buffer[] = [];
    let total = 0;
    // The size is only a hint: the first read asks for one byte more than it, so an unchanged file takes one read.
    let want = stats.size + 1;
    while (total <= this.maxBytes) {
      const chunk = Buffer.allocUnsafe(Math.min(Math.max(want, minReadBytes), this.maxBytes + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, total);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      want = maxReadBytes;
    }
    if (total > this.maxBytes) throw tooLarge();
    return Buffer.concat(chunks, total);
  }

  private async chown(handle: FileHandle): Promise<void> {
    const { uid, gid } = this.options;
    if (uid !== undefined && gid !== undefined) await handle.chown(uid, gid);
  }

  private async rootReal(): Promise<string> {
    try {
      return await realpath(this.options.root);
    } catch (error) {
      throw new AppError('NOT_FOUND', 'workspace not found', undefined, { cause: error });
    }
  }
}

/** Where an entry sorts in a listing: directories first, then by name ignoring case, then by exact name. */
interface Position {
  directory: boolean;
  folded: string;
  name: string;
}

/** A total order (no two different names are equal), so a cursor splits a directory exactly. */
function comparePositions(a: Position, b: Position): number {
  if (a.directory !== b.directory) return a.directory ? -1 : 1;
  if (a.folded !== b.folded) return a.folded < b.folded ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** A cursor is the last entry's name, marked `d:` for a directory or `f:` for anything else. */
function formatCursor(position: Position): string {
  return `${position.directory ? 'd' : 'f'}:${position.name}`;
}

function parseCursor(cursor: string): Position {
  const name = cursor.slice(2);
  if (!/^[df]:/.test(cursor) || name === '' || name.includes('/') || name.includes('\0') || Buffer.byteLength(name) > maxNameBytes) {
    throw new AppError('BAD_REQUEST', 'cursor is not one a listing gave');
  }
  return { directory: cursor.startsWith('d'), folded: name.toLowerCase(), name };
}

/**
 * Splits a workspace-relative path into its names. Rejects absolute paths, `..`, NUL bytes, empty
 * paths and over-long names with BAD_REQUEST.
 */
export function parseWorkspacePath(relativePath: string): string[] {
  if (typeof relativePath !== 'string' || relativePath.length === 0) throw new AppError('BAD_REQUEST', 'path is empty');
  if (relativePath.includes('\0')) throw new AppError('BAD_REQUEST', 'path contains a NUL byte');
  if (relativePath.startsWith('/')) throw new AppError('BAD_REQUEST', 'path must be relative to the workspace');
  if (Buffer.byteLength(relativePath) > maxPathBytes) throw new AppError('BAD_REQUEST', 'path is too long');
  const segments = relativePath.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (segments.length === 0) throw new AppError('BAD_REQUEST', 'path names no file');
  for (const segment of segments) {
    if (segment === '..') throw new AppError('BAD_REQUEST', 'path may not contain ..');
    if (Buffer.byteLength(segment) > maxNameBytes) throw new AppError('BAD_REQUEST', 'a name in the path is too long');
  }
  return segments;
}

async function openDirectory(directory: string, relativePath: string): Promise<FileHandle> {
  try {
    return await open(directory, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    throw fileError(error, relativePath);
  }
}

/** The real path of a workspace path, all symlinks resolved; it must still be inside the root. */
async function resolveInside(root: string, segments: string[], relativePath: string): Promise<string> {
  let target: string;
  try {
    target = await realpath(path.join(root, ...segments));
  } catch (error) {
    throw fileError(error, relativePath);
  }
  assertInside(root, target, relativePath);
  return target;
}

function assertInside(root: string, target: string, relativePath: string): void {
  if (target !== root && !target.startsWith(`${root}/`)) {
    throw new AppError('BAD_REQUEST', `path leaves the workspace: ${relativePath}`);
  }
}

/** Checks where an open file really is, which no later rename or symlink swap can change. */
async function assertHandleInside(root: string, handle: FileHandle, relativePath: string): Promise<void> {
  const actual = await readlink(`/proc/self/fd/${handle.fd}`);
  assertInside(root, actual, relativePath);
}

function fileError(error: unknown, relativePath: string): AppError {
  if (error instanceof AppError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return new AppError('NOT_FOUND', `file not found: ${relativePath}`);
    case 'ELOOP':
      return new AppError('BAD_REQUEST', `path is a symlink: ${relativePath}`);
    case 'ENOTDIR':
      return new AppError('BAD_REQUEST', `a parent in the path is not a directory: ${relativePath}`);
    case 'EISDIR':
      return new AppError('BAD_REQUEST', `path is a directory: ${relativePath}`);
    case 'ENAMETOOLONG':
      return new AppError('BAD_REQUEST', `path is too long: ${relativePath}`);
    case 'ENXIO':
      return new AppError('BAD_REQUEST', `not a regular file: ${relativePath}`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new AppError('WORKSPACE_FULL', `the workspace is full; nothing was written: ${relativePath}`);
    default:
      return new AppError('INTERNAL', `workspace file operation failed: ${relativePath}`, { code }, { cause: error });
  }
}
