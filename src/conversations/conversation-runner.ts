import { randomUUID } from 'node:crypto';
import { constants } from 'node:os';
import { ClaudeProcess } from '../claude/claude-process.ts';
import { claudeArgs, claudeEnv } from '../claude/claude-command.ts';
import { EventMapper, type TurnProgress, type TurnResult } from '../claude/event-mapper.ts';
import { AppError, type ErrorCode } from '../core/errors.ts';
import type { EventData } from '../core/events.ts';
import { egressProxyEnv, type GatewayGrants } from '../core/gateway.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import type { ExitStatus, Sandbox, SandboxProvider } from '../core/sandbox.ts';
import type { Fence, Store } from '../core/store.ts';
import type { Agent, Conversation, TokenUsage, Turn, TurnStatus, UsageRecord } from '../core/types.ts';
import type { EventBus } from './event-bus.ts';
import { LimitWatch, type LimitNotice } from './limit-watch.ts';
import { sandboxAlive } from './sandbox-alive.ts';
import type { SandboxSlot, SandboxSlots, SlotHolder } from './sandbox-slots.ts';

export interface RunnerSettings {
  /** An idle sandbox is paused after this long (0: never), if its backend can pause. */
  pauseAfterMs: number;
  /** An idle sandbox and its CLI are stopped after this long; the next message resumes the Claude session. */
  idleTimeoutMs: number;
  maxRetries: number;
  requestTimeoutMs: number;
  /** How long the CLI gets to honour an interrupt before it is killed. */
  interruptGraceMs: number;
  /** Process limit of each sandbox. */
  pidsLimit: number;
}

/** Prices model usage (src/usage/price-table.ts); the same table the usage API reports with. */
export interface CostEstimator {
  cost(model: string, usage: TokenUsage): number;
}

export interface RunnerDeps {
  store: Store;
  prices: CostEstimator;
  sandboxes: SandboxProvider;
  gateway: GatewayGrants;
  bus: EventBus;
  settings: RunnerSettings;
  logger: Logger;
  /** Quota checks and sandbox-hours accounting; none: no quotas. */
  quotas?: TurnQuotas;
  /** How many sandboxes each user runs at once. */
  slots: SandboxSlots;
  /** Lowers an agent's limits to the administrators' ceilings (src/agents/agent-ceilings.ts). */
  ceilings: { clamp(agent: Agent): Agent };
}

/** What the runner asks of the quotas (src/usage/quotas-service.ts implements it). */
export interface TurnQuotas {
  /** Throws QUOTA_EXCEEDED when the user may not start a turn; `needsSandbox`: it would start a sandbox. */
  assertCanStartTurn(userId: string, options: { needsSandbox: boolean }): Promise<void>;
  /**
   * Counts a sandbox about to start against the user's quotas, atomically across replicas; throws QUOTA_EXCEEDED when
   * it may not start. Returns the session id to pass to `sandboxStopped` (also when the sandbox then fails to start).
   */
  startSandbox(userId: string, conversationId: string): Promise<string>;
  sandboxStopped(sessionId: string): Promise<void>;
}

/** A conversation's sandbox with its gateway grant; it outlives CLI processes and terminals. */
interface SandboxLease {
  sandbox: Sandbox;
  token: string;
  paused: boolean;
  /** The sandbox-hours session, when quotas are kept. */
  sessionId: string | null;
  /** Which memory and disk limits the sandbox ran into, already told to the user. */
  limits: LimitWatch;
}

interface AgentProcess {
  cli: ClaudeProcess;
  mapper: EventMapper;
}

/** A sandbox held open for someone other than the agent (a terminal); `detach` lets it idle again. */
export interface SandboxAttachment {
  sandbox: Sandbox;
  detach(): void;
}

type TurnEnd =
  | { kind: 'result'; result: TurnResult; sawInit: boolean }
  | { kind: 'exit'; status: ExitStatus; sawInit: boolean; stderr: string }
  | { kind: 'failure'; code: ErrorCode; message: string };

type Outcome = { status: Exclude<TurnStatus, 'queued' | 'running'>; error?: { code: ErrorCode; message: string } };

const resumeNotFound = /No conversation found/i;
const resumePointNotFound = /No message found with message\.uuid/i;

/** Events that show the model had begun to answer a turn. */
const answerTypes = new Set<string>(['message.delta', 'message.completed', 'tool.started']);

/** How long a turn's end waits for the gateway to record the usage of model requests still closing (a stopped stream). */
const usageSettleMs = 3000;

/**
 * Runs one conversation's turns, one at a time, in one long-lived Claude Code process inside the
 * conversation's sandbox. Every event is persisted before it is published.
 */
export class ConversationRunner implements SlotHolder {
  private readonly queue: string[] = [];
  /** The user's sandbox slot this conversation holds: from a message's arrival (or a terminal) to the sandbox's stop. */
  private slot: SandboxSlot | null = null;
  /** Messages being queued right now; the sandbox is not stopped for another while any is. */
  private reservations = 0;
  private usedAt = Date.now();
  private pumping = false;
  private lease: SandboxLease | null = null;
  private agentProcess: AgentProcess | null = null;
  /** Terminals and other users of the sandbox besides the agent; the sandbox does not idle while any is attached. */
  private attachments = 0;
  private current: {
    turnId: string;
    stopReason: 'user' | 'deadline' | null;
    killTimer: NodeJS.Timeout | null;
    /** Limits the sandbox ran into during the turn. */
    limitsHit: Set<LimitNotice['code']>;
    /** What the model produced, once the message has reached the CLI; null: it never did. */
    progress: TurnProgress | null;
  } | null = null;
  /** Limit checks, one after another, so that their events keep their order. */
  private limitChecks: Promise<void> = Promise.resolve();
  private idleTimers: NodeJS.Timeout[] = [];
  /** An interrupt that arrived while the next turn was being started. */
  private stopNext = false;
  private teardownDone: Promise<void> = Promise.resolve();
  /** A CLI being stopped because it holds a turn the session leaves out; the next one starts once it has exited. */
  private retiring: Promise<void> = Promise.resolve();
  /** A CLI being started, so that a turn and a warm start never start two. */
  private starting: { lease: SandboxLease; process: Promise<AgentProcess> } | null = null;
  private persisted: Promise<void> = Promise.resolve();
  /** Model requests of a turn that the gateway refused (a quota), by turn. */
  private readonly refusals = new Map<string, { code: ErrorCode; message: string }>();
  private closed = false;
  /**
   * This replica's lease of the conversation, while it holds one: every write of a turn carries it, so that once
   * another replica has taken the conversation over, the store refuses this one's writes (LEASE_LOST).
   */
  private fence: Fence | null = null;
  /** The lease was lost: nothing more is written, the agent is killed and the sandbox released. */
  private lost = false;
  /** Shutting down: the running turn may finish, but no further one starts here. */
  private draining = false;
  private idleListener: () => void = () => undefined;
  private activeTurnId: string | null = null;
  private readonly logger: Logger;

  constructor(
    readonly conversationId: string,
    private readonly deps: RunnerDeps,
  ) {
    this.logger = deps.logger.child({ conversationId });
  }

  /** True while a turn runs or waits. */
  get busy(): boolean {
    return this.pumping;
  }

  /** This replica holds the conversation's lease with this fence (from the service's claim). */
  own(fence: Fence): void {
    if (this.lost) return;
    this.fence = fence;
  }

  get owned(): boolean {
    return this.fence !== null && !this.lost;
  }

  /** The id of the turn running now, if any. */
  /** The turn this runner is working on, from the moment it takes it from the queue (before the store says running). */
  get runningTurnId(): string | null {
    return this.activeTurnId;
  }

  /**
   * Queues the conversation's turns that wait in the store and are not queued here yet (posted to another replica,
   * or left by the previous holder of the lease).
   */
  async refill(): Promise<void> {
    if (this.closed || !this.owned) return;
    const turns = await this.deps.store.listTurns(this.conversationId);
    for (const turn of turns) {
      if (turn.status === 'queued' && !this.queue.includes(turn.id) && this.current?.turnId !== turn.id) this.enqueue(turn.id);
    }
  }

  /**
   * Another replica took the conversation over (this one was stopped or cut off past its lease): write nothing more,
   * kill the agent at once (the other replica's agent now writes the Claude session) and release the sandbox.
   */
  abandon(): Promise<void> {
    if (this.lost) return this.teardownDone;
    this.lost = true;
    this.closed = true;
    this.clearIdleTimers();
    this.queue.length = 0;
    this.logger.warn('the conversation’s lease was lost to another replica; releasing its sandbox');
    this.agentProcess?.cli.kill();
    const done = this.teardown();
    if (this.slot) this.deps.slots.release(this.slot);
    this.slot = null;
    return done;
  }

  /** Called when the runner holds no sandbox and has nothing to do (its lease can be given up). */
  onIdle(listener: () => void): void {
    this.idleListener = listener;
  }

  /** Finishes the running turn at most; queued turns stay queued in the store for another replica. */
  stopAfterCurrentTurn(): void {
    this.draining = true;
    this.queue.length = 0;
  }

  get live(): boolean {
    return this.lease !== null;
  }

  get paused(): boolean {
    return this.lease?.paused ?? false;
  }

  /** Turns waiting behind the running one. */
  get queued(): number {
    return this.queue.length;
  }

  get inUse(): boolean {
    return this.pumping || this.reservations > 0 || this.attachments > 0;
  }

  get lastUsedAt(): number {
    return this.usedAt;
  }

  /**
   * Holds a sandbox slot of the user's while a message is being queued (SANDBOX_LIMIT_REACHED when every one of
   * the user's sandboxes is busy); call the returned function once the message is queued or refused.
   */
  reserveSlot(userId: string): () => void {
    this.slot ??= this.deps.slots.take(userId, this);
    this.reservations += 1;
    this.usedAt = Date.now();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.reservations -= 1;
      this.settleSlot();
    };
  }

  /** Another conversation of the user's needs the slot: stop the sandbox now (the next message resumes it). */
  yieldSlot(): Promise<void> {
    this.slot = null;
    this.logger.info('sandbox stopped to make room for another of the user’s');
    return this.teardown();
  }

  enqueue(turnId: string): void {
    if (this.closed) return;
    this.clearIdleTimers();
    this.queue.push(turnId);
    if (!this.pumping) void this.pump();
  }

  /** The gateway refused a model request of the turn: the turn ends with this error rather than an upstream one. */
  noteRefusal(turnId: string, error: { code: ErrorCode; message: string }): void {
    if (this.current?.turnId === turnId && !this.refusals.has(turnId)) this.refusals.set(turnId, error);
  }

  /** Stops the running turn (or the one being started); false when no turn is running. */
  interrupt(): boolean {
    if (this.stopTurn('user')) return true;
    if (!this.pumping) return false;
    this.stopNext = true;
    return true;
  }

  /**
   * Persists an event, then publishes it; events of one conversation keep their order. While the store is unavailable
   * (a database restarting, a file locked), the append is tried again until it succeeds or the runner closes.
   */
  emit(data: EventData): Promise<void> {
    const next = this.persisted.then(async () => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          if (this.lost) throw new AppError('LEASE_LOST', 'another replica holds the conversation');
          const event = await this.deps.store.appendEvent(this.conversationId, data, this.fence ?? undefined);
          this.deps.bus.publish(event);
          return;
        } catch (error) {
          if (error instanceof AppError && error.code === 'LEASE_LOST') {
            void this.abandon();
            throw error;
          }
          if (!(error instanceof AppError && error.code === 'STORE_UNAVAILABLE') || this.closed) throw error;
          this.logger.warn({ type: data.type, attempt }, 'the store is unavailable; the event will be retried');
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 200 * 2 ** (attempt - 1))));
        }
      }
    });
    this.persisted = next.catch((error: unknown) => this.logger.error({ err: error, type: data.type }, 'could not persist event'));
    return next;
  }

  /** The conversation's sandbox (started or resumed as needed), held until `detach`. */
  async attach(): Promise<SandboxAttachment> {
    if (this.closed) throw new AppError('SANDBOX_UNAVAILABLE', 'the conversation is closing');
    const conversation = await this.deps.store.getConversation(this.conversationId);
    const stored = conversation && (await this.deps.store.getAgent(conversation.agentId));
    if (!conversation || !stored) throw new AppError('NOT_FOUND', 'conversation not found');
    const agent = this.deps.ceilings.clamp(stored);
    this.attachments += 1;
    this.clearIdleTimers();
    try {
      const lease = await this.ensureSandbox(conversation, agent);
      let detached = false;
      return {
        sandbox: lease.sandbox,
        detach: () => {
          if (detached) return;
          detached = true;
          this.attachments -= 1;
          this.armIdleTimers();
        },
      };
    } catch (error) {
      this.attachments -= 1;
      this.armIdleTimers();
      throw error;
    }
  }

  /**
   * Ends a turn that a previous server process left running: interrupted, with what the gateway metered for it. Like
   * a stopped turn, it stays in the Claude session if the model had begun to answer, and is left out otherwise.
   */
  async endLost(turn: Turn, reason: 'restart' | 'replica'): Promise<void> {
    const { store } = this.deps;
    const error =
      reason === 'restart'
        ? { code: 'SERVER_RESTARTED' as const, message: 'the server stopped while this turn was running' }
        : { code: 'REPLICA_LOST' as const, message: 'the server replica running this turn stopped; another replica took the conversation over' };
    const events = await store.listEvents(this.conversationId);
    const answered = events.some(({ data }) => answerTypes.has(data.type) && 'turnId' in data && data.turnId === turn.id);
    // Its CLI started at the last turn kept, so the session's newest messages are that turn's: resume them all.
    if (answered) await store.updateConversation(this.conversationId, { claudeResumeAt: null });
    else {
      const conversation = await store.getConversation(this.conversationId);
      if (conversation && !conversation.claudeResumeAt) await store.updateConversation(this.conversationId, { claudeSessionId: null });
    }
    const ended = sumUsage(await store.listUsage({ conversationId: this.conversationId, turnId: turn.id }), this.deps.prices);
    await this.emit({ type: 'error', turnId: turn.id, ...error });
    await this.emit({ type: 'turn.ended', turnId: turn.id, status: 'interrupted', ...ended, durationMs: 0, error });
    await store.updateTurn(turn.id, { status: 'interrupted', endedAt: new Date().toISOString(), ...ended, error: error.message }, this.fence ?? undefined);
  }

  /** Stops the CLI, releases the sandbox and revokes the gateway token; queued turns stay queued in the store. */
  async close(): Promise<void> {
    this.closed = true;
    this.clearIdleTimers();
    this.queue.length = 0;
    this.stopTurn('user');
    await this.teardown();
    if (this.slot) this.deps.slots.release(this.slot);
    this.slot = null;
    await this.persisted;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (let turnId = this.queue.shift(); turnId && !this.closed && !this.draining; turnId = this.queue.shift()) {
        this.activeTurnId = turnId;
        await this.runTurn(turnId)
          .catch((error: unknown) => this.logger.error({ err: error, turnId }, 'turn failed'))
          .finally(() => (this.activeTurnId = null));
      }
    } finally {
      this.pumping = false;
    }
    this.armIdleTimers();
  }

  private async runTurn(turnId: string): Promise<void> {
    const { store } = this.deps;
    const turn = await store.getTurn(turnId);
    const conversation = await store.getConversation(this.conversationId);
    if (!turn || turn.status !== 'queued' || !conversation) return;
    const stored = await store.getAgent(conversation.agentId);
    // An agent over a ceiling lowered since it was saved runs at the ceiling.
    const agent = stored && this.deps.ceilings.clamp(stored);
    const started = Date.now();
    const running = await store.updateTurn(turnId, { status: 'running', startedAt: new Date(started).toISOString() }, this.fence ?? undefined).catch((error: unknown) => {
      if (error instanceof AppError && error.code === 'LEASE_LOST') void this.abandon();
      throw error;
    });
    if (!running) return;
    this.logger.info({ turnId, replicaId: this.fence?.replicaId ?? null }, 'turn started');
    await this.emit({ type: 'turn.started', turnId, text: turn.input });
    this.current = { turnId, stopReason: this.stopNext ? 'user' : null, killTimer: null, limitsHit: new Set(), progress: null };
    this.stopNext = false;

    let end: TurnEnd;
    if (!agent) {
      end = { kind: 'failure', code: 'AGENT_FAILED', message: 'the conversation’s agent no longer exists' };
    } else {
      end = await this.attempt(turn, conversation, agent);
      const refused = resumeRefused(end);
      if (refused && !this.current.stopReason && !this.lost) {
        // The CLI could not load the session: its file is gone (killed before writing it), or it lacks the resume point.
        // A fresh session, or the whole of this one, is better than a conversation stuck on the error.
        const patch = refused === 'session' ? { claudeSessionId: null, claudeResumeAt: null } : { claudeResumeAt: null };
        this.logger.warn({ turnId, missing: refused }, 'Claude session could not be resumed; retrying without what is missing');
        this.retireAgentProcess();
        await store.updateConversation(this.conversationId, patch);
        end = await this.attempt(turn, { ...conversation, ...patch }, agent);
      }
    }

    const { stopReason, limitsHit, progress } = this.current;
    if (this.current.killTimer) clearTimeout(this.current.killTimer);
    this.current = null;
    // Another replica holds the conversation now and has ended this turn: nothing of it may be written from here.
    if (this.lost) return;
    const refusal = this.refusals.get(turnId) ?? null;
    this.refusals.delete(turnId);
    const outcome = conclude(end, stopReason, refusal, limitsHit.has('SANDBOX_OUT_OF_MEMORY') ? agent?.limits.memoryMb ?? null : null);
    if (progress && agent) await this.keepOrLeaveOut(outcome.status, progress, agent);
    if (outcome.error) await this.emit({ type: 'error', turnId, ...outcome.error });
    const ended = await this.meteredUsage(turnId);
    await this.emit({ type: 'turn.ended', turnId, status: outcome.status, ...ended, durationMs: Date.now() - started, ...(outcome.error ? { error: outcome.error } : {}) });
    await store.updateTurn(turnId, { status: outcome.status, endedAt: new Date().toISOString(), ...ended, error: outcome.error?.message ?? null }, this.fence ?? undefined);
    this.logger.info({ turnId, status: outcome.status, durationMs: Date.now() - started, replicaId: this.fence?.replicaId ?? null }, 'turn ended');
  }

  /** Sends the turn to the CLI (starting one if needed) and waits for its result or the process's end. */
  private async attempt(turn: Turn, conversation: Conversation, agent: Agent): Promise<TurnEnd> {
    let lease: SandboxLease;
    let agentProcess: AgentProcess;
    try {
      lease = await this.ensureSandbox(conversation, agent);
      agentProcess = await this.ensureAgentProcess(lease, conversation, agent).catch(async (error: unknown) => {
        // The sandbox died on its own (a gVisor sandbox over its memory or pids limit, say): replace it once.
        if (!(error instanceof AppError) || error.code !== 'SANDBOX_UNAVAILABLE' || this.lease !== lease) throw error;
        this.logger.warn({ sandboxId: lease.sandbox.id }, 'the sandbox is gone; starting a new one');
        await this.teardown();
        lease = await this.ensureSandbox(conversation, agent);
        return this.ensureAgentProcess(lease, conversation, agent);
      });
    } catch (error) {
      if (error instanceof AppError && (error.code === 'QUOTA_EXCEEDED' || error.code === 'SANDBOX_LIMIT_REACHED')) {
        return { kind: 'failure', code: error.code, message: error.message };
      }
      this.logger.error({ err: error }, 'could not start the agent');
      return { kind: 'failure', code: 'SANDBOX_UNAVAILABLE', message: 'the agent’s sandbox could not be started; see the server log' };
    }
    // Interrupted (or past its deadline) while the sandbox was starting: the message is never sent.
    if (this.current?.stopReason) return { kind: 'failure', code: 'AGENT_FAILED', message: 'stopped before it started' };
    const { cli, mapper } = agentProcess;
    mapper.beginTurn(turn.id);
    this.deps.gateway.setTurn(lease.token, turn.id);
    // The agent's egress domains as they are now; a change applies from the next turn.
    this.deps.gateway.setEgressDomains(lease.token, agent.egressDomains);
    const deadline = setTimeout(() => this.stopTurn('deadline'), agent.limits.turnTimeoutSeconds * 1000);

    let sent = false;
    const end = await new Promise<TurnEnd>((resolve) => {
      let sawInit = false;
      const finish = (value: TurnEnd): void => {
        cli.off('line', onLine);
        cli.off('exit', onExit);
        resolve(value);
      };
      const onLine = (line: unknown): void => {
        const mapped = mapper.map(line);
        if (mapped.kind === 'events') {
          for (const event of mapped.events) void this.emit(event);
          // A command that failed may have hit a limit: say so right after its result.
          if (mapped.events.some((event) => event.type === 'tool.ended')) void this.checkLimits(turn.id, lease);
        }
        else if (mapped.kind === 'session') sawInit = true;
        else if (mapped.kind === 'result') finish({ kind: 'result', result: mapped.result, sawInit });
      };
      const onExit = (status: ExitStatus): void => finish({ kind: 'exit', status, sawInit, stderr: cli.stderr });
      cli.on('line', onLine);
      cli.on('exit', onExit);
      if (cli.exited) onExit(cli.exited);
      else {
        cli.sendUserMessage(turn.input);
        sent = true;
      }
    });
    if (sent && this.current) this.current.progress = mapper.progress;
    clearTimeout(deadline);
    this.deps.gateway.setTurn(lease.token, null);
    if (end.kind === 'exit' && this.agentProcess === agentProcess) this.agentProcess = null;
    // A CLI that died may have been the OOM killer's choice (or, under gVisor, the whole sandbox): the engine
    // reports that just after the process ends.
    if (end.kind === 'exit') await new Promise((resolve) => setTimeout(resolve, 250));
    await this.checkLimits(turn.id, lease);
    // The CLI may have died with its whole sandbox (gVisor past its process limit): free the sandbox now, and say why.
    if (end.kind === 'exit' && this.lease === lease && !(await sandboxAlive(lease.sandbox).catch(() => true))) {
      this.logger.warn({ sandboxId: lease.sandbox.id }, 'the sandbox died during the turn');
      await this.checkLimits(turn.id, lease);
      await this.teardown();
      if (!this.current?.limitsHit.has('SANDBOX_OUT_OF_MEMORY')) {
        const message =
          `the agent's sandbox stopped unexpectedly, and the agent with it (a gVisor sandbox ends as a whole when it goes over its ` +
          `limit of ${this.deps.settings.pidsLimit} processes). The workspace is kept; the next message starts a new sandbox`;
        return { kind: 'failure', code: 'SANDBOX_CRASHED', message };
      }
    }
    return end;
  }

  /** The live sandbox lease, resumed if paused, or a new one (sandbox plus gateway grant). */
  private async ensureSandbox(conversation: Conversation, agent: Agent): Promise<SandboxLease> {
    await this.teardownDone;
    if (this.lease) {
      if (this.lease.paused) {
        await this.lease.sandbox.resume();
        this.lease.paused = false;
      }
      return this.lease;
    }
    const { gateway, sandboxes, settings, quotas } = this.deps;
    this.slot ??= this.deps.slots.take(conversation.userId, this);
    // The sandbox stopped to make room goes first, so the user's count of running sandboxes never goes over.
    await this.slot.ready;
    // Counted before it starts, atomically across replicas: a sandbox over the user's quota is refused here.
    const sessionId = quotas ? await quotas.startSandbox(conversation.userId, conversation.id) : null;
    let token: string | null = null;
    try {
      const grant = await gateway.open({
        sandboxId: newId('sbx'),
        userId: conversation.userId,
        conversationId: conversation.id,
        agentId: agent.id,
        egressDomains: agent.egressDomains,
      });
      token = grant.token;
      const sandbox = await sandboxes.acquire({
        workspaceId: conversation.id,
        limits: { memoryMb: agent.limits.memoryMb, cpus: agent.limits.cpus, pids: settings.pidsLimit },
        gatewaySocket: grant.socketPath,
        labels: { conversation: conversation.id, user: conversation.userId },
        ...(agent.sandboxRuntime === 'default' ? {} : { runtime: agent.sandboxRuntime }),
      });
      this.lease = { sandbox, token: grant.token, paused: false, sessionId, limits: new LimitWatch(agent.limits.memoryMb) };
      this.logger.info({ sandboxId: sandbox.id }, 'sandbox started');
      return this.lease;
    } catch (error) {
      if (token !== null) await gateway.close(token).catch(() => undefined);
      if (sessionId !== null) {
        await quotas?.sandboxStopped(sessionId).catch((stopError: unknown) => this.logger.error({ err: stopError }, 'could not record the sandbox stop'));
      }
      throw error;
    }
  }

  /** The running CLI, or a new one in the lease's sandbox resuming the conversation's Claude session. */
  private async ensureAgentProcess(lease: SandboxLease, conversation: Conversation, agent: Agent): Promise<AgentProcess> {
    // One start at a time: a turn may find the next CLI's warm start under way. One in another sandbox is of no use.
    while (this.starting) {
      const starting = this.starting;
      if (starting.lease === lease) return starting.process;
      await starting.process.catch(() => undefined);
    }
    if (this.agentProcess && !this.agentProcess.cli.exited) return this.agentProcess;
    const starting = { lease, process: this.startAgentProcess(lease, conversation, agent) };
    this.starting = starting;
    try {
      return await starting.process;
    } finally {
      if (this.starting === starting) this.starting = null;
    }
  }

  private async startAgentProcess(lease: SandboxLease, conversation: Conversation, agent: Agent): Promise<AgentProcess> {
    // Two CLIs must never write one session at once.
    await this.retiring;
    const { store, settings } = this.deps;
    let session: { resume: string; at: string | null } | { create: string };
    // At the end of the last turn kept: whatever came after it (a turn that did not complete) is left out.
    if (conversation.claudeSessionId) session = { resume: conversation.claudeSessionId, at: conversation.claudeResumeAt };
    else {
      if (this.lost) throw new AppError('LEASE_LOST', 'another replica holds the conversation');
      session = { create: randomUUID() };
      // Stored before the CLI starts, so that a process killed at any point can be resumed.
      await store.updateConversation(conversation.id, { claudeSessionId: session.create });
    }
    if (this.lease !== lease) throw new AppError('SANDBOX_UNAVAILABLE', 'the sandbox was stopped while the agent was starting');
    const env = {
      ...claudeEnv({
        gatewayUrl: lease.sandbox.gatewayUrl,
        gatewayToken: lease.token,
        maxRetries: settings.maxRetries,
        requestTimeoutMs: settings.requestTimeoutMs,
      }),
      // The tools' only way to the network: the gateway's egress proxy, which allows the agent's egressDomains.
      ...egressProxyEnv(lease.sandbox.gatewayUrl),
    };
    const cli = new ClaudeProcess(lease.sandbox, ['claude', ...claudeArgs({ agent, session })], env, this.logger);
    cli.start();
    const agentProcess: AgentProcess = { cli, mapper: new EventMapper() };
    // A process that ends between turns (it crashed, or was killed) is simply started again for the next one.
    cli.once('exit', (status) => {
      if (this.agentProcess !== agentProcess || this.current) return;
      this.logger.warn({ status }, 'idle agent process exited');
      this.agentProcess = null;
    });
    this.agentProcess = agentProcess;
    this.logger.info({ sandboxId: lease.sandbox.id, resume: 'resume' in session }, 'agent started');
    return agentProcess;
  }

  /**
   * Keeps a turn in the Claude session, or leaves it out. A completed turn, or one the user stopped once the model
   * had begun to answer, is kept: the next CLI resumes at its last assistant message. Any other turn (failed, timed
   * out, stopped before an answer) is left out: the CLI holding it in memory is stopped, and the next one resumes at
   * the last turn kept, so that the message reaches the model only if it is sent again.
   */
  private async keepOrLeaveOut(status: Outcome['status'], progress: TurnProgress, agent: Agent): Promise<void> {
    const { store } = this.deps;
    if (this.lost) return;
    const kept = status === 'completed' || (status === 'interrupted' && progress.answered);
    if (kept) {
      if (progress.lastAssistantUuid) await store.updateConversation(this.conversationId, { claudeResumeAt: progress.lastAssistantUuid });
      return;
    }
    this.retireAgentProcess();
    const conversation = await store.getConversation(this.conversationId);
    // No turn kept yet: the next CLI starts a new session rather than one that begins with this message.
    if (conversation && !conversation.claudeResumeAt) await store.updateConversation(this.conversationId, { claudeSessionId: null });
    this.startNextAgentProcess(agent);
  }

  /** Starts the next CLI now rather than with the next message, which then does not wait for its start-up (~1-2 s). */
  private startNextAgentProcess(agent: Agent): void {
    const lease = this.lease;
    if (!lease || this.closed) return;
    void (async () => {
      const conversation = await this.deps.store.getConversation(this.conversationId);
      if (conversation && this.lease === lease && !this.closed) await this.ensureAgentProcess(lease, conversation, agent);
    })().catch((error: unknown) => this.logger.debug({ err: error }, 'the next agent process was not started ahead'));
  }

  /** Stops the CLI in the background (it is no longer the conversation's); the next one starts after it has exited. */
  private retireAgentProcess(): void {
    const agentProcess = this.agentProcess;
    if (!agentProcess) return;
    this.agentProcess = null;
    const previous = this.retiring;
    this.retiring = previous.then(() => agentProcess.cli.stop(2000)).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'could not stop the agent process');
    });
  }

  /**
   * What the gateway metered for the turn's model requests, whatever the turn's outcome, once the requests still
   * closing (a stopped stream) have been recorded. Null when it made none that reported usage.
   */
  private async meteredUsage(turnId: string): Promise<{ usage: TokenUsage | null; costUsd: number | null }> {
    const settled = await this.deps.gateway.usageSettled(turnId, usageSettleMs);
    if (!settled) this.logger.warn({ turnId }, 'model requests of the turn were still open; its usage may be incomplete');
    return sumUsage(await this.deps.store.listUsage({ conversationId: this.conversationId, turnId }), this.deps.prices);
  }

  /** Tells the user about limits the sandbox ran into since the last check (out of memory, a full workspace). */
  private checkLimits(turnId: string, lease: SandboxLease): Promise<void> {
    this.limitChecks = this.limitChecks.then(async () => {
      const pressure = await lease.sandbox.pressure().catch((error: unknown) => {
        this.logger.warn({ err: error }, 'could not read the sandbox’s limits');
        return null;
      });
      for (const notice of pressure ? lease.limits.observe(pressure) : []) {
        if (this.current?.turnId === turnId) this.current.limitsHit.add(notice.code);
        this.logger.warn({ sandboxId: lease.sandbox.id, code: notice.code }, 'sandbox limit reached');
        await this.emit({ type: 'error', turnId, ...notice });
      }
    });
    return this.limitChecks;
  }

  private stopTurn(reason: 'user' | 'deadline'): boolean {
    const current = this.current;
    const agentProcess = this.agentProcess;
    if (!current) return false;
    current.stopReason ??= reason;
    if (!agentProcess) return true;
    agentProcess.cli.interrupt();
    current.killTimer ??= setTimeout(() => {
      this.logger.warn({ turnId: current.turnId }, 'agent ignored the interrupt; killing it');
      agentProcess.cli.kill();
    }, this.deps.settings.interruptGraceMs);
    return true;
  }

  /** Stops the CLI, releases the sandbox and revokes its gateway token. */
  private teardown(): Promise<void> {
    const lease = this.lease;
    const agentProcess = this.agentProcess;
    if (!lease) return this.teardownDone;
    this.lease = null;
    this.agentProcess = null;
    this.clearIdleTimers();
    this.teardownDone = (async () => {
      // A frozen CLI cannot finish cleanly; thaw it first.
      if (lease.paused) await lease.sandbox.resume().catch(() => undefined);
      await agentProcess?.cli.stop(2000);
      await this.retiring;
      await lease.sandbox.release().catch((error: unknown) => this.logger.error({ err: error }, 'sandbox release failed'));
      await this.deps.gateway.close(lease.token).catch(() => undefined);
      if (lease.sessionId) {
        await this.deps.quotas?.sandboxStopped(lease.sessionId).catch((error: unknown) => this.logger.error({ err: error }, 'could not record the sandbox stop'));
      }
      this.logger.info({ sandboxId: lease.sandbox.id }, 'sandbox stopped');
      this.settleSlot();
    })();
    return this.teardownDone;
  }

  /** Notes the last use, and gives the slot back when there is no sandbox and nothing about to start one. */
  private settleSlot(): void {
    this.usedAt = Date.now();
    if (this.lease || this.inUse || this.queue.length > 0) return;
    if (this.slot) this.deps.slots.release(this.slot);
    this.slot = null;
    if (!this.closed) this.idleListener();
  }

  /** Idle: pause the sandbox after a while, stop it after longer; never while a turn runs or a terminal is attached. */
  private armIdleTimers(): void {
    this.clearIdleTimers();
    this.settleSlot();
    if (this.closed || !this.lease || this.pumping || this.attachments > 0) return;
    const idle = (): boolean => !this.pumping && this.attachments === 0 && !this.closed;
    const { pauseAfterMs, idleTimeoutMs } = this.deps.settings;
    if (pauseAfterMs > 0 && pauseAfterMs < idleTimeoutMs) {
      this.idleTimers.push(
        setTimeout(() => {
          const lease = this.lease;
          if (!lease || lease.paused || !idle()) return;
          void lease.sandbox.pause().then(
            (paused) => {
              lease.paused = paused;
              if (paused) this.logger.info({ sandboxId: lease.sandbox.id }, 'sandbox paused');
            },
            (error: unknown) => this.logger.error({ err: error }, 'sandbox pause failed'),
          );
        }, pauseAfterMs),
      );
    }
    this.idleTimers.push(setTimeout(() => idle() && void this.teardown(), idleTimeoutMs));
    for (const timer of this.idleTimers) timer.unref();
  }

  private clearIdleTimers(): void {
    for (const timer of this.idleTimers) clearTimeout(timer);
    this.idleTimers = [];
  }
}

/** A turn's usage and cost from the gateway's records of its model requests; nulls when there are none. */
export function sumUsage(records: readonly UsageRecord[], prices: CostEstimator): { usage: TokenUsage | null; costUsd: number | null } {
  if (records.length === 0) return { usage: null, costUsd: null };
  const usage: TokenUsage = { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 };
  let costUsd = 0;
  for (const record of records) {
    usage.inputTokens += record.usage.inputTokens;
    usage.outputTokens += record.usage.outputTokens;
    usage.cacheCreationInputTokens += record.usage.cacheCreationInputTokens;
    usage.cacheReadInputTokens += record.usage.cacheReadInputTokens;
    costUsd += prices.cost(record.model, record.usage);
  }
  return { usage, costUsd };
}

/** Whether the CLI refused to start because it could not load the session, or the resume point in it. */
function resumeRefused(end: TurnEnd): 'session' | 'resume point' | null {
  if (end.kind === 'failure' || end.sawInit) return null;
  const reported = end.kind === 'result' ? end.result.text : end.stderr;
  if (resumeNotFound.test(reported)) return 'session';
  if (resumePointNotFound.test(reported)) return 'resume point';
  return null;
}

/**
 * The turn's status and error from how it ended and why it was stopped. `refusal`: the gateway refused one of its
 * model requests (a quota), which is why the CLI gave up.
 */
export function conclude(
  end: TurnEnd,
  stopReason: 'user' | 'deadline' | null,
  refusal: { code: ErrorCode; message: string } | null = null,
  /** The memory limit, when the sandbox killed a process for going over it during the turn. */
  outOfMemoryLimitMb: number | null = null,
): Outcome {
  if (stopReason === 'deadline') return { status: 'timed_out', error: { code: 'TIMEOUT', message: 'the turn reached its time limit and was stopped' } };
  if (stopReason === 'user') return { status: 'interrupted' };
  if (refusal) return { status: 'failed', error: refusal };
  switch (end.kind) {
    case 'failure':
      return { status: 'failed', error: { code: end.code, message: end.message } };
    case 'exit': {
      if (outOfMemoryLimitMb !== null) {
        return {
          status: 'failed',
          error: {
            code: 'SANDBOX_OUT_OF_MEMORY',
            message: `the agent was stopped: its sandbox went over the memory limit of ${outOfMemoryLimitMb} MiB. The workspace is kept; the next message goes on`,
          },
        };
      }
      const signal = end.status.signal ?? signalOfExitCode(end.status.code);
      const reason = signal ? `signal ${signal}` : `exit code ${end.status.code}`;
      const lastLine = end.stderr.trim().split('\n').pop() ?? '';
      return {
        status: 'failed',
        error: { code: 'AGENT_FAILED', message: `the agent process ended unexpectedly (${reason})${lastLine ? `: ${lastLine}` : ''}` },
      };
    }
    case 'result': {
      const { result } = end;
      if (!result.isError) return { status: 'completed' };
      if (result.terminalReason === 'aborted_streaming') return { status: 'interrupted' };
      if (result.apiErrorStatus !== null || /API Error|API key|Not logged in|timed out/i.test(result.text)) {
        const status = result.apiErrorStatus !== null ? ` (HTTP ${result.apiErrorStatus})` : '';
        return { status: 'failed', error: { code: 'UPSTREAM_ERROR', message: `the model API request failed${status}: ${result.text}` } };
      }
      return { status: 'failed', error: { code: 'AGENT_FAILED', message: result.text || `the agent stopped: ${result.subtype}` } };
    }
  }
}

/**
 * The signal that ended a process whose exit code Docker reported as 128 + the signal's number (the CLI is no shell,
 * so such a code is a signal, not its own choice).
 */
function signalOfExitCode(code: number | null): string | null {
  if (code === null || code <= 128) return null;
  return Object.entries(constants.signals).find(([, number]) => number === code - 128)?.[0] ?? null;
}
