import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

/**
 * The server's file descriptors, and how many of them sandboxes may hold through their gateway sockets.
 *
 * Every connection a sandbox opens to its gateway socket is a descriptor in the server, and most of them bring a
 * second one (the upstream request of a model call, the remote end of an egress tunnel). So the server keeps a
 * reserve for its own work (the store, HTTP clients, pipes to the agents, Docker's API) and lets all sandboxes
 * together hold at most half of the rest: their connections and what those open on their behalf then fit.
 * See docs/decisions/0010-descriptor-budget.md.
 */

/** Descriptors kept for the server's own work. */
export const reservedDescriptors = 4096;

/** RLIMIT_NOFILE of a process. */
export interface OpenFileLimit {
  soft: number;
  hard: number;
}

/**
 * RLIMIT_NOFILE as `/proc/<pid>/limits` shows it (Linux); null when it cannot be read. `unlimited` (which Linux
 * never allows for this limit) reads as the largest descriptor count the kernel could hand out.
 */
export function readOpenFileLimit(limitsText?: string): OpenFileLimit | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!match) return null;
  const value = (field: string): number => (field === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(field));
  const soft = value(match[1]!);
  const hard = value(match[2]!);
  return Number.isFinite(soft) && Number.isFinite(hard) ? { soft, hard } : null;
}

/**
 * Gateway connections all sandboxes together may hold, for a process allowed `limit` descriptors: half of what is
 * left after the reserve. A process with a small limit keeps half of it as its reserve instead.
 */
export function sandboxConnectionBudget(limit: number, reserve = reservedDescriptors): number {
  const kept = Math.min(reserve, Math.floor(limit / 2));
  return Math.max(0, Math.floor((limit - kept) / 2));
}

/**
 * Raises this process's soft RLIMIT_NOFILE to its hard limit. Node has no setrlimit, so util-linux's prlimit(1)
 * changes the running process. (Node raises it itself at start on Linux; this holds when something else lowered it.)
 * Returns the limit in force afterwards; null when it cannot be read.
 */
export async function raiseOpenFileLimit(options: { prlimit?: string } = {}): Promise<{ limit: OpenFileLimit | null; raised: boolean; error: string | null }> {
  const before = readOpenFileLimit();
  if (!before || before.soft >= before.hard) return { limit: before, raised: false, error: null };
  try {
    await promisify(execFile)(options.prlimit ?? 'prlimit', ['--pid', String(process.pid), `--nofile=${before.hard}:${before.hard}`]);
  } catch (error) {
    return { limit: before, raised: false, error: error instanceof Error ? error.message : String(error) };
  }
  const after = readOpenFileLimit();
  return { limit: after, raised: (after?.soft ?? 0) > before.soft, error: null };
}

/** Why a connection was refused: its sandbox holds its cap, or all sandboxes together hold the server's budget. */
export type ConnectionRefusal = 'sandbox-limit' | 'server-limit';

/** A connection counted against the budget; `release` (idempotent) gives its place back. */
export interface ConnectionPlace {
  release(): void;
}

/**
 * Counts the connections each sandbox holds on its gateway socket, against a cap per sandbox and a budget for all
 * sandboxes together.
 */
export class ConnectionBudget {
  private readonly bySandbox = new Map<string, number>();
  private total = 0;

  constructor(readonly limits: { perSandbox: number; total: number }) {}

  /** Takes a place for one more connection of the sandbox, or says why there is none. */
  take(sandboxId: string): ConnectionPlace | { refused: ConnectionRefusal } {
    const held = this.bySandbox.get(sandboxId) ?? 0;
    if (held >= this.limits.perSandbox) return { refused: 'sandbox-limit' };
    if (this.total >= this.limits.total) return { refused: 'server-limit' };
    this.bySandbox.set(sandboxId, held + 1);
    this.total += 1;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total -= 1;
        const left = (this.bySandbox.get(sandboxId) ?? 1) - 1;
        if (left > 0) this.bySandbox.set(sandboxId, left);
        else this.bySandbox.delete(sandboxId);
      },
    };
  }

  /** Connections held now: by one sandbox, or by all. */
  held(sandboxId?: string): number {
    return sandboxId === undefined ? this.total : (this.bySandbox.get(sandboxId) ?? 0);
  }
}
