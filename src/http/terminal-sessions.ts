import type { WebSocket } from 'ws';
import { AppError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import { sandboxPaths, type ExecProcess } from '../core/sandbox.ts';
import type { User } from '../core/types.ts';
import type { ConversationsService } from '../conversations/conversations-service.ts';
import { revokedMessage, type LiveConnection } from './live-connections.ts';

export interface TerminalSessionsOptions {
  /** How long a shell whose socket went away waits for its tab to come back before it is killed. */
  graceMs?: number;
  /** Output kept for a reconnecting tab to catch up on. */
  scrollbackBytes?: number;
  /** Live shells one user may hold at once (AGENTYARD_TERMINALS_PER_USER). */
  maxPerUser?: number;
  /** Live shells one conversation may hold at once (AGENTYARD_TERMINALS_PER_CONVERSATION). */
  maxPerConversation?: number;
  logger?: Logger;
}

/** Frames the server sends as text; the terminal's output goes as binary frames. */
export type TerminalServerMessage =
  | { type: 'attached'; session: string; start: number; resumed: boolean }
  | { type: 'exit'; code: number | null; signal: string | null }
  | { type: 'error'; code: string; message: string };

const highWaterBytes = 1024 * 1024;
const lowWaterBytes = 256 * 1024;
const shellPrompt = '\\[\\e[1;32m\\]agent@agentyard\\[\\e[0m\\]:\\[\\e[1;34m\\]\\w\\[\\e[0m\\]\\$ ';

/**
 * Interactive shells in conversations' sandboxes, each kept across reconnects of its browser tab: a socket that
 * drops leaves the shell running for a grace period, and the tab that reattaches gets the output it missed.
 */
export class TerminalSessions {
  private readonly sessions = new Map<string, TerminalSession>();
  private readonly opening = new Map<string, { userId: string; conversationId: string; session: Promise<TerminalSession> }>();
  /** Terminals shown here whose shells run on the replica holding the sandbox (src/http/holder-forwarding.ts). */
  private readonly relayed = new Set<{ key: string; userId: string; conversationId: string }>();
  private readonly graceMs: number;
  private readonly scrollbackBytes: number;
  private readonly maxPerUser: number;
  private readonly maxPerConversation: number;
  private readonly logger: Logger;
  private closed = false;

  constructor(
    private readonly conversations: ConversationsService,
    options: TerminalSessionsOptions = {},
  ) {
    this.graceMs = options.graceMs ?? 5 * 60_000;
    this.scrollbackBytes = options.scrollbackBytes ?? 256 * 1024;
    this.maxPerUser = options.maxPerUser ?? 8;
    this.maxPerConversation = options.maxPerConversation ?? 4;
    this.logger = options.logger ?? silentLogger;
  }

  /** The user's shell `sessionId` in the conversation: the live one, or a new one started in its sandbox. */
  async open(user: User, conversationId: string, sessionId: string, size: { cols: number; rows: number }): Promise<TerminalSession> {
    if (this.closed) throw new AppError('SANDBOX_UNAVAILABLE', 'the server is shutting down');
    await this.conversations.get(user, conversationId);
    const key = `${user.id}\0${conversationId}\0${sessionId}`;
    const live = this.sessions.get(key);
    if (live) {
      live.process.resize(size.cols, size.rows);
      return live;
    }
    const pending = this.opening.get(key);
    if (pending) return pending.session;
    this.checkBounds(user.id, conversationId);
    const opening = this.start(user, conversationId, sessionId, key, size);
    this.opening.set(key, { userId: user.id, conversationId, session: opening });
    try {
      return await opening;
    } finally {
      this.opening.delete(key);
    }
  }

  /**
   * Counts a terminal relayed to the replica holding the sandbox against this replica's bounds, as a shell here
   * would count, until `release` (its socket closed). Reopening a session already counted here counts once.
   */
  holdRelayed(user: User, conversationId: string, sessionId: string): { release(): void } {
    if (this.closed) throw new AppError('SANDBOX_UNAVAILABLE', 'the server is shutting down');
    const key = `${user.id}\0${conversationId}\0${sessionId}`;
    const counted = this.sessions.has(key) || this.opening.has(key) || [...this.relayed].some((entry) => entry.key === key);
    if (!counted) this.checkBounds(user.id, conversationId);
    const entry = { key, userId: user.id, conversationId };
    this.relayed.add(entry);
    return { release: () => void this.relayed.delete(entry) };
  }

  /** Shells live or starting, and relayed terminals, count against the bounds until they end (each session once). */
  private checkBounds(userId: string, conversationId: string): void {
    const byKey = new Map<string, { userId: string; conversationId: string }>();
    for (const [key, session] of [...this.sessions, ...this.opening]) byKey.set(key, session);
    for (const entry of this.relayed) byKey.set(entry.key, entry);
    const held = [...byKey.values()];
    const ofUser = held.filter((session) => session.userId === userId).length;
    if (ofUser >= this.maxPerUser) {
      throw new AppError('TOO_MANY_TERMINALS', `you have ${ofUser} terminals open, the most one user may (AGENTYARD_TERMINALS_PER_USER); close one first`, {
        bound: 'perUser',
        limit: this.maxPerUser,
      });
    }
    const ofConversation = held.filter((session) => session.conversationId === conversationId).length;
    if (ofConversation >= this.maxPerConversation) {
      throw new AppError(
        'TOO_MANY_TERMINALS',
        `this conversation has ${ofConversation} terminals open, the most one conversation may (AGENTYARD_TERMINALS_PER_CONVERSATION); close one first`,
        { bound: 'perConversation', limit: this.maxPerConversation },
      );
    }
  }

  /** Kills every shell (server shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    const sessions = [...this.sessions.values()];
    for (const session of sessions) session.terminate();
    await Promise.all(sessions.map((session) => session.process.exited));
  }

  private async start(user: User, conversationId: string, sessionId: string, key: string, size: { cols: number; rows: number }): Promise<TerminalSession> {
    const { sandbox, detach } = await this.conversations.attachSandbox(user, conversationId);
    let process: ExecProcess;
    try {
      process = sandbox.exec(['/bin/bash', '-l'], {
        tty: size,
        cwd: sandboxPaths.workspace,
        env: { TERM: 'xterm-256color', COLORTERM: 'truecolor', LANG: 'C.UTF-8', SHELL: '/bin/bash', PS1: shellPrompt },
      });
    } catch (error) {
      detach();
      throw error;
    }
    const logger = this.logger.child({ conversationId, userId: user.id, terminal: sessionId });
    const session = new TerminalSession(sessionId, user.id, conversationId, process, this.scrollbackBytes, this.graceMs, logger);
    this.sessions.set(key, session);
    logger.info({ sandboxId: sandbox.id }, 'terminal opened');
    void process.exited.then((status) => {
      this.sessions.delete(key);
      detach();
      session.ended(status);
      logger.info({ status }, 'terminal closed');
    });
    return session;
  }
}

/** One shell and the socket (if any) that shows it. */
export class TerminalSession {
  private socket: WebSocket | null = null;
  private readonly scrollback: Buffer[] = [];
  private scrollbackSize = 0;
  /** Bytes of output produced since the shell started; the scrollback holds the last `scrollbackSize` of them. */
  private produced = 0;
  private graceTimer: NodeJS.Timeout | null = null;
  private drainTimer: NodeJS.Timeout | null = null;
  private finished = false;
  private revoked = false;
  /** The credentials that opened or reattached this shell: revoking any of them ends it. */
  private readonly credentials = new Map<string, LiveConnection>();

  constructor(
    readonly id: string,
    readonly userId: string,
    readonly conversationId: string,
    readonly process: ExecProcess,
    private readonly maxScrollback: number,
    private readonly graceMs: number,
    private readonly logger: Logger,
  ) {
    process.stdout.on('data', (chunk: Buffer) => this.output(chunk));
    // No socket yet: the shell may still print its prompt, kept in the scrollback.
    this.armGrace();
  }

  /**
   * Shows the shell on `socket`, replacing any socket it had. `offset` is how many bytes of output the client has
   * already; it gets what it missed when the scrollback still holds it, or a reset and the whole scrollback.
   */
  attach(socket: WebSocket, offset: number | null): void {
    if (this.revoked) return this.refuse(socket);
    if (this.finished) return socket.close(1000, 'the shell exited');
    const previous = this.socket;
    this.socket = socket;
    this.clearGrace();
    if (previous && previous !== socket) previous.close(4001, 'the terminal was opened elsewhere');

    const scrollbackStart = this.produced - this.scrollbackSize;
    const resumed = offset !== null && offset >= scrollbackStart && offset <= this.produced;
    const start = resumed ? offset : scrollbackStart;
    this.send({ type: 'attached', session: this.id, start, resumed });
    const missed = Buffer.concat(this.scrollback).subarray(start - scrollbackStart);
    if (missed.length > 0) socket.send(missed);

    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (this.socket !== socket) return;
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (isBinary) this.process.stdin?.write(bytes);
      else this.control(bytes.toString('utf8'));
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.process.stdout.resume();
      this.armGrace();
    });
  }

  /** Ends the shell and everything it started. */
  terminate(): void {
    this.process.kill('SIGKILL');
  }

  /**
   * Ties the shell to a credential that opened or reattached it (`key` names the credential): when that credential
   * is revoked, `revoke` runs. A credential already held is not tracked twice.
   */
  holdCredential(key: string, connection: LiveConnection): void {
    if (this.finished || this.credentials.has(key)) connection.release();
    else this.credentials.set(key, connection);
  }

  /** A credential that opened the shell was revoked: the socket closes with 4401 and the shell is killed. */
  revoke(): void {
    this.revoked = true;
    const socket = this.socket;
    this.socket = null;
    if (socket) this.refuse(socket);
    this.terminate();
  }

  private refuse(socket: WebSocket): void {
    this.sendTo(socket, { type: 'error', code: 'UNAUTHORIZED', message: revokedMessage });
    socket.close(4401, 'the credential was revoked');
  }

  /** Called once the shell has exited. */
  ended(status: { code: number | null; signal: string | null }): void {
    this.finished = true;
    for (const connection of this.credentials.values()) connection.release();
    this.credentials.clear();
    this.clearGrace();
    if (this.drainTimer) clearInterval(this.drainTimer);
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      this.sendTo(socket, { type: 'exit', code: status.code, signal: status.signal });
      socket.close(1000, 'the shell exited');
    }
  }

  private control(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return this.send({ type: 'error', code: 'BAD_REQUEST', message: 'text frames must be JSON control messages' });
    }
    const { type, cols, rows, data } = (message ?? {}) as { type?: unknown; cols?: unknown; rows?: unknown; data?: unknown };
    try {
      if (type === 'resize' && typeof cols === 'number' && typeof rows === 'number') this.process.resize(cols, rows);
      else if (type === 'input' && typeof data === 'string') this.process.stdin?.write(data);
      else this.send({ type: 'error', code: 'BAD_REQUEST', message: 'unknown control message' });
    } catch (error) {
      const appError = error instanceof AppError ? error : new AppError('BAD_REQUEST', 'invalid control message');
      this.send({ type: 'error', code: appError.code, message: appError.message });
    }
  }

  private output(chunk: Buffer): void {
    this.produced += chunk.length;
    this.scrollback.push(chunk);
    this.scrollbackSize += chunk.length;
    while (this.scrollbackSize - this.scrollback[0]!.length >= this.maxScrollback) {
      this.scrollbackSize -= this.scrollback.shift()!.length;
    }
    const socket = this.socket;
    if (!socket || socket.readyState !== socket.OPEN) return;
    socket.send(chunk);
    // A slow client holds the shell back (the pty stops being read) rather than filling memory.
    if (socket.bufferedAmount > highWaterBytes && !this.drainTimer) {
      this.process.stdout.pause();
      this.drainTimer = setInterval(() => {
        if (this.socket === socket && socket.bufferedAmount > lowWaterBytes && socket.readyState === socket.OPEN) return;
        clearInterval(this.drainTimer!);
        this.drainTimer = null;
        this.process.stdout.resume();
      }, 50);
    }
  }

  private armGrace(): void {
    this.clearGrace();
    this.graceTimer = setTimeout(() => {
      this.logger.info('terminal abandoned; killing its shell');
      this.terminate();
    }, this.graceMs);
    this.graceTimer.unref();
  }

  private clearGrace(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
  }

  private send(message: TerminalServerMessage): void {
    if (this.socket) this.sendTo(this.socket, message);
  }

  private sendTo(socket: WebSocket, message: TerminalServerMessage): void {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
  }
}
