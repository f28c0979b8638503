import type { Readable, Writable } from 'node:stream';

/** Fixed paths inside every sandbox, whatever the backend. */
export const sandboxPaths = {
  /** The conversation's workspace; the agent's working directory. */
  workspace: '/workspace',
  /** HOME of the agent user; Claude Code's state (sessions) lives in `${home}/.claude`. */
  home: '/home/agent',
  /** Directory on PATH holding the pinned `claude` binary. */
  bin: '/opt/agentyard/bin',
} as const;

export interface SandboxLimits {
  /** Memory limit, MiB. */
  memoryMb: number;
  /** CPU limit, in cores (fractions allowed). */
  cpus: number;
  /** Maximum number of processes and threads. */
  pids: number;
}

/**
 * RLIMIT_NOFILE (soft and hard) of every process in a sandbox, on every backend: a sandbox must not inherit the
 * server's much larger limit (docs/decisions/0010-descriptor-budget.md).
 */
export const sandboxOpenFileLimit = 1024;

export interface SandboxSpec {
  /** Names the workspace mounted at /workspace; one per conversation. Created on first use, kept after release. */
  workspaceId: string;
  limits: SandboxLimits;
  /**
   * Host path of the model gateway's unix socket for this sandbox. It is bound into the sandbox and
   * bridged to `gatewayUrl`, the sandbox's only way out.
   */
  gatewaySocket: string;
  /** Recorded on the sandbox (labels, cgroup names) so the owner can find it again. */
  labels?: Record<string, string>;
  /** One of the provider's `runtimes`; unset: the provider's default. */
  runtime?: SandboxRuntime;
}

/** An OCI runtime a container backend can run a sandbox under. */
export type SandboxRuntime = 'runc' | 'runsc';

export interface ExecOptions {
  /** The complete environment of the process (PATH and HOME are added when missing). Nothing is inherited from the host. */
  env?: Record<string, string>;
  /** Working directory inside the sandbox; defaults to the workspace. */
  cwd?: string;
  /** Keep stdin open as a pipe; otherwise stdin is empty. */
  stdin?: boolean;
  /**
   * Run on a pseudo-terminal of this size (for interactive shells): stdin is then always open, and stdout carries
   * the terminal's combined output (stderr stays empty).
   */
  tty?: { cols: number; rows: number };
}

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

/** A process running inside a sandbox. */
export interface ExecProcess {
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Signals the process (and, for SIGKILL, its whole process group inside the sandbox). */
  kill(signal?: NodeJS.Signals): void;
  /** Resizes the process's terminal; does nothing for a process without one. */
  resize(cols: number, rows: number): void;
  /** Settles when the process has exited and its output streams have ended. */
  readonly exited: Promise<ExitStatus>;
}

/** A place where one conversation's agent runs, isolated from every other. */
export interface Sandbox {
  readonly id: string;
  readonly workspaceId: string;
  /** The URL inside the sandbox at which the gateway answers (e.g. http://127.0.0.1:4180). */
  readonly gatewayUrl: string;
  /** Runs a command inside the sandbox as the unprivileged agent user. */
  exec(argv: string[], options?: ExecOptions): ExecProcess;
  /** Reads a file of the workspace; `path` is relative to the workspace root and may not leave it. */
  readFile(path: string): Promise<Buffer>;
  /** Writes a file of the workspace, creating parent directories; confined like readFile. */
  writeFile(path: string, data: Buffer | string): Promise<void>;
  /**
   * Freezes every process of the sandbox (they keep their memory but use no CPU); false when the backend
   * cannot, in which case nothing changed. Idempotent.
   */
  pause(): Promise<boolean>;
  /** Thaws a paused sandbox; does nothing to a running one. */
  resume(): Promise<void>;
  /** Kills every process of the sandbox and frees its resources. The workspace is kept. Idempotent. */
  release(): Promise<void>;
  /** The limits the sandbox has run into: still answers after the sandbox died or was released. */
  pressure(): Promise<SandboxPressure>;
}

/** What a sandbox has run into, for telling the user why a command or the agent failed. */
export interface SandboxPressure {
  /**
   * Times the kernel killed a process of the sandbox for going over its memory limit, since the sandbox started
   * (under gVisor that may be the whole sandbox). Only grows.
   */
  oomKills: number;
  /** The workspace's file system when it has a size limit (workspace and home together); null when it has none. */
  disk: { sizeBytes: number; freeBytes: number } | null;
}

export interface WorkspaceEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  /** Bytes, for files. */
  size: number;
  modifiedAt: string;
}

/** Which page of a directory listing to read. */
export interface WorkspacePageRequest {
  /** Entries at most (default 500). */
  limit?: number;
  /** The `nextCursor` of the previous page; absent for the first. */
  cursor?: string | null;
}

/** One page of a directory listing. */
export interface WorkspaceListing {
  entries: WorkspaceEntry[];
  /** Where the next page starts (it names the last entry of this one); null on the last page. */
  nextCursor: string | null;
}

/**
 * A workspace's files, read and written from the host whether or not a sandbox is live. Paths are relative
 * to the workspace root and can never leave it (`..`, absolute paths and symlinks pointing outside are refused).
 */
export interface WorkspaceFileAccess {
  /**
   * A page of a directory's entries ('' is the root), directories first, then by name. Pages follow one another by
   * name, not by position, so entries added or removed between two pages never make a page skip or repeat another.
   */
  list(path: string, page?: WorkspacePageRequest): Promise<WorkspaceListing>;
  /** A regular file's bytes, never more than the per-file limit (PAYLOAD_TOO_LARGE), even while it grows. */
  read(path: string): Promise<Buffer>;
  /**
   * Writes a regular file. With `ifMatch`, only over the file whose `workspaceFileVersion` is one of those given
   * (`*`: any existing file); otherwise FILE_CHANGED and nothing is written.
   */
  write(path: string, data: Buffer | string, options?: { ifMatch?: readonly string[] | '*' }): Promise<void>;
}

export interface BackendCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** How to fix it, when not ok. */
  fix?: string;
}

/** Creates sandboxes of one kind. Docker and Kubernetes backends implement the same port. */
export interface SandboxProvider {
  readonly kind: 'local' | 'docker' | 'kubernetes';
  /** The runtimes a spec may ask for (empty: the backend has no choice). */
  readonly runtimes: readonly SandboxRuntime[];
  /** Creates (or claims from a warm pool) a sandbox for the workspace. */
  acquire(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox>;
  /** The workspace's files, confined to it. */
  workspaceFiles(workspaceId: string): WorkspaceFileAccess;
  /** Deletes a workspace and the agent state kept with it. Releases its sandbox first if one is live. */
  removeWorkspace(workspaceId: string): Promise<void>;
  /** What the backend needs on this host, and whether it is there. */
  check(): Promise<BackendCheck[]>;
  /** Releases every live sandbox. */
  close(): Promise<void>;
}
