import type { AgentsService } from '../agents/agents-service.ts';
import { defaultAgentId } from '../agents/agents-service.ts';
import { AppError, notFound, type ErrorCode } from '../core/errors.ts';
import type { ConversationEvent } from '../core/events.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import type { WorkspaceFileAccess, WorkspaceListing, WorkspacePageRequest } from '../core/sandbox.ts';
import type { Conversation, EgressRecord, Turn, User } from '../core/types.ts';
import type { ConversationLeases } from '../replicas/conversation-leases.ts';
import { knownGone, type ReplicaPresence } from '../replicas/replica-presence.ts';
import { ConversationRunner, type RunnerDeps, type SandboxAttachment } from './conversation-runner.ts';
import { titleFromMessage, untitledConversation } from './conversation-title.ts';

/** The periodic look for conversations left without a replica, run by one replica at a time. */
const takeoverTask = 'conversation-takeover';

/** How often the takeover task looks: often (it is one replica's two queries), and a few times per lease period. */
function janitorIntervalMs(leaseMs: number): number {
  return Math.max(250, Math.min(1000, Math.floor(leaseMs / 3)));
}

export interface ChatMessage {
  role: 'user' | 'assistant';
  turnId: string;
  text: string;
  createdAt: string;
}

export interface ConversationsServiceDeps extends RunnerDeps {
  agents: AgentsService;
  maxMessageBytes: number;
  /** Messages that may wait behind running turns, per conversation and per user. */
  maxQueued: { perConversation: number; perUser: number };
  /** This process among the replicas, and the conversations it holds (docs/decisions/0013-replicas.md). */
  presence: ReplicaPresence;
  leases: ConversationLeases;
  /**
   * No other server process can use the store (SQLite's lock): every lease left in it is a previous process's, and
   * nobody needs leases renewed or looked after. Spares SQLite (one connection, writes that block) their writes.
   */
  singleProcess: boolean;
}

/** Conversations, their turns and their event log; owns one runner per active conversation. */
export class ConversationsService {
  private readonly runners = new Map<string, ConversationRunner>();
  /** Who owns each conversation that has a runner, for the per-user bounds. */
  private readonly owners = new Map<string, string>();
  /** Messages accepted but not queued yet (their turn is being stored), per conversation. */
  private readonly arriving = new Map<string, number>();
  private readonly logger: Logger;
  private janitor: NodeJS.Timeout | null = null;
  private readonly unlisten: (() => void)[] = [];
  private draining = false;

  constructor(private readonly deps: ConversationsServiceDeps) {
    this.logger = deps.logger;
    deps.leases.onLost((conversationId) => void this.lost(conversationId));
  }

  /**
   * Start-up recovery, then the work every replica shares: a turn left running by a replica that is gone (this
   * host's previous process, or another replica past its lease) is marked interrupted, its events up to then kept;
   * queued turns run again in order, on whichever replica claims their conversation first.
   */
  async recover(): Promise<void> {
    const { store, leases, presence } = this.deps;
    // Replicas of this host whose process is gone hold nothing any more: their leases are taken at once.
    const gone = new Set<string>();
    for (const replica of await store.listReplicas()) {
      if (!knownGone(replica, presence.id)) continue;
      gone.add(replica.id);
      await store.deleteReplica(replica.id);
    }
    const left = new Set([...(await store.listTurnsByStatus(['running', 'queued']))].map((turn) => turn.conversationId));
    // Idle conversations of a gone replica too, so that their next message does not wait for the lease to expire.
    if (gone.size > 0) {
      const everyLease = await store.listExpiredLeases('9999-12-31T23:59:59.999Z');
      for (const lease of everyLease) if (gone.has(lease.replicaId)) left.add(lease.conversationId);
    }
    for (const conversationId of left) {
      const lease = await store.getLease(conversationId);
      const presumeExpired = lease !== null && (this.deps.singleProcess || gone.has(lease.replicaId) || lease.replicaId === presence.id);
      await this.adopt(conversationId, { presumeExpired, reason: 'restart' });
    }
    if (this.deps.singleProcess) return;
    this.unlisten.push(store.notifications.onWake((conversationId) => void this.adopt(conversationId, { reason: 'replica' })));
    // Lost notices are made good by the periodic look for unowned work.
    this.unlisten.push(store.notifications.onGap(() => void this.lookForUnownedWork()));
    leases.start();
    this.janitor = setInterval(() => void this.lookForUnownedWork(), janitorIntervalMs(leases.leaseMs));
    this.janitor.unref();
  }

  /**
   * Takes over conversations whose lease expired (their replica died or was cut off) or that have queued turns and no
   * holder. One replica at a time looks (the `conversation-takeover` task, held for two rounds and renewed each round,
   * so that it passes to a survivor before the leases of a replica that died holding it expire); the store's atomic
   * claim would give each conversation to one replica anyway.
   */
  private async lookForUnownedWork(): Promise<void> {
    if (this.draining) return;
    try {
      const now = new Date();
      const interval = janitorIntervalMs(this.deps.leases.leaseMs);
      const mine = await this.deps.store.claimTask(takeoverTask, this.deps.presence.id, now.toISOString(), new Date(now.getTime() + 2 * interval).toISOString());
      if (!mine) return;
      const expired = await this.deps.store.listExpiredLeases(now.toISOString());
      const unowned = await this.deps.store.listUnownedQueuedConversations(now.toISOString());
      for (const conversationId of new Set([...expired.map((lease) => lease.conversationId), ...unowned])) {
        await this.adopt(conversationId, { reason: 'replica' });
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'could not look for conversations left without a replica');
    }
  }

  /**
   * Claims the conversation (when its lease is free, expired, this replica's, or `presumeExpired`), ends a turn its
   * previous holder left running, and runs its queued turns. Gives the lease back when there is nothing to do.
   */
  private async adopt(conversationId: string, options: { presumeExpired?: boolean; reason: 'restart' | 'replica' }): Promise<void> {
    if (this.draining) return;
    try {
      const claimed = await this.deps.leases.claim(conversationId, options.presumeExpired ? { presumeExpired: true } : {});
      if (!claimed) return;
      const conversation = await this.deps.store.getConversation(conversationId);
      if (!conversation) {
        await this.deps.leases.release(conversationId);
        return;
      }
      const runner = this.runner(conversationId, conversation.userId);
      runner.own(claimed.fence);
      if (claimed.previousReplicaId) this.logger.info({ conversationId, from: claimed.previousReplicaId }, 'took the conversation over');
      for (const turn of await this.deps.store.listTurns(conversationId)) {
        // Holding the lease, this replica alone may run the conversation's turns: one running elsewhere was lost.
        if (turn.status === 'running' && runner.runningTurnId !== turn.id) await runner.endLost(turn, options.reason);
      }
      await runner.refill();
      if (!runner.busy && !runner.live && !runner.inUse) await this.releaseIdle(conversationId, runner);
    } catch (error) {
      this.logger.warn({ err: error, conversationId }, 'could not take the conversation over');
    }
  }

  /** Gives up the lease of a conversation this replica no longer works on, and forgets its runner. */
  private async releaseIdle(conversationId: string, runner: ConversationRunner): Promise<void> {
    if (this.runners.get(conversationId) !== runner || runner.busy || runner.live || runner.inUse) return;
    this.runners.delete(conversationId);
    this.owners.delete(conversationId);
    await runner.close();
    await this.deps.leases.release(conversationId);
  }

  /** Another replica took the conversation: this one's runner stops writing and releases its sandbox. */
  private async lost(conversationId: string): Promise<void> {
    const runner = this.runners.get(conversationId);
    if (!runner) return;
    this.runners.delete(conversationId);
    this.owners.delete(conversationId);
    await runner.abandon();
  }

  async create(user: User, input: { agentId?: string | undefined; title?: string | undefined }): Promise<Conversation> {
    const agent = await this.deps.agents.get(user, input.agentId ?? defaultAgentId);
    return this.deps.store.createConversation({ id: newId('conv'), userId: user.id, agentId: agent.id, title: input.title ?? untitledConversation });
  }

  list(user: User): Promise<Conversation[]> {
    return this.deps.store.listConversations(user.id);
  }

  /** The user's conversation; another user's is "not found", so its existence does not leak. */
  async get(user: User, conversationId: string): Promise<Conversation> {
    const conversation = await this.deps.store.getConversation(conversationId);
    if (!conversation || conversation.userId !== user.id) throw notFound('conversation');
    return conversation;
  }

  async detail(user: User, conversationId: string): Promise<{ conversation: Conversation; turns: Turn[]; messages: ChatMessage[]; running: boolean }> {
    const conversation = await this.get(user, conversationId);
    const turns = await this.deps.store.listTurns(conversation.id);
    const events = await this.deps.store.listEvents(conversation.id);
    const messages: ChatMessage[] = [];
    for (const { data, createdAt } of events) {
      if (data.type === 'turn.queued') messages.push({ role: 'user', turnId: data.turnId, text: data.text, createdAt });
      else if (data.type === 'message.completed') messages.push({ role: 'assistant', turnId: data.turnId, text: data.text, createdAt });
    }
    // From the store, so that every replica answers alike.
    const running = turns.some((turn) => turn.status === 'running' || turn.status === 'queued');
    return { conversation, turns, messages, running };
  }

  async rename(user: User, conversationId: string, title: string): Promise<Conversation> {
    await this.get(user, conversationId);
    const updated = await this.deps.store.updateConversation(conversationId, { title });
    if (!updated) throw notFound('conversation');
    return updated;
  }

  /** Deletes the conversation, its event log and its workspace. */
  async delete(user: User, conversationId: string): Promise<void> {
    await this.get(user, conversationId);
    const runner = this.runners.get(conversationId);
    this.runners.delete(conversationId);
    this.owners.delete(conversationId);
    await runner?.close();
    this.deps.leases.forget(conversationId);
    await this.deps.sandboxes.removeWorkspace(conversationId);
    await this.deps.store.deleteConversation(conversationId);
  }

  /** Queues a user message as a new turn; it runs after any turn already running or queued. */
  async send(user: User, conversationId: string, text: string): Promise<Turn> {
    const conversation = await this.get(user, conversationId);
    if (Buffer.byteLength(text) > this.deps.maxMessageBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `the message is longer than ${this.deps.maxMessageBytes} bytes`);
    }
    if (!text.trim()) throw new AppError('BAD_REQUEST', 'the message is empty');
    // Refused before anything is stored: 429 QUOTA_EXCEEDED naming the quota and when it resets.
    await this.deps.quotas?.assertCanStartTurn(user.id, { needsSandbox: !(this.runners.get(conversation.id)?.live ?? false) });
    // The bounds are checked and the message counted in one synchronous step, so concurrent sends cannot overshoot.
    this.assertQueueRoom(user.id, conversation.id);
    const runner = this.runner(conversation.id, user.id);
    const releaseSlot = runner.reserveSlot(user.id);
    this.arriving.set(conversation.id, (this.arriving.get(conversation.id) ?? 0) + 1);
    try {
      await this.assertStoredQueueRoom(conversation.id);
      const turn = await this.deps.store.createTurn({ id: newId('turn'), conversationId: conversation.id, input: text });
      // Anyone may queue a message; the lease holder alone runs it.
      this.deps.bus.publish(await this.deps.store.appendEvent(conversation.id, { type: 'turn.queued', turnId: turn.id, text }));
      await this.dispatch(conversation.id, runner);
      await this.titleFromFirstMessage(conversation, text);
      return turn;
    } finally {
      const left = (this.arriving.get(conversation.id) ?? 1) - 1;
      if (left > 0) this.arriving.set(conversation.id, left);
      else this.arriving.delete(conversation.id);
      releaseSlot();
    }
  }

  /**
   * Runs the conversation's queued turns here when this replica holds (or can claim) its lease; otherwise wakes the
   * holder, which reads them from the store.
   */
  private async dispatch(conversationId: string, runner: ConversationRunner): Promise<void> {
    const claimed = this.draining ? null : await this.deps.leases.claim(conversationId);
    if (claimed && this.runners.get(conversationId) === runner) {
      runner.own(claimed.fence);
      await runner.refill();
      return;
    }
    if (claimed) await this.deps.leases.release(conversationId);
    await this.deps.store.notifications.wake(conversationId);
  }

  /**
   * The conversation's bound counted in the store, so that it holds whichever replicas the messages were posted to.
   */
  private async assertStoredQueueRoom(conversationId: string): Promise<void> {
    const { perConversation } = this.deps.maxQueued;
    const waiting = (await this.deps.store.listTurns(conversationId)).filter((turn) => turn.status === 'queued').length;
    // Arriving counts this message too.
    if (waiting + (this.arriving.get(conversationId) ?? 1) - 1 >= perConversation) {
      throw new AppError(
        'QUEUE_FULL',
        `${perConversation} messages already wait in this conversation (the limit, AGENTYARD_MAX_QUEUED_PER_CONVERSATION); send more once a turn has ended`,
        { bound: 'queuedPerConversation', limit: perConversation },
      );
    }
  }

  /** Names a conversation after its first message, unless it was given a title already (at creation or a rename). */
  private async titleFromFirstMessage(conversation: Conversation, text: string): Promise<void> {
    // No event yet: this message is the conversation's first.
    if (conversation.lastSeq !== 0 || conversation.title !== untitledConversation) return;
    const title = titleFromMessage(text);
    if (!title) return;
    await this.deps.store.updateConversation(conversation.id, { title }).catch((error: unknown) => {
      this.logger.warn({ err: error, conversationId: conversation.id }, 'could not title the conversation');
    });
  }

  /** Throws QUEUE_FULL (429) naming the bound when one more message would wait too many in the conversation or for the user. */
  private assertQueueRoom(userId: string, conversationId: string): void {
    const { perConversation, perUser } = this.deps.maxQueued;
    const waiting = (id: string): number => (this.runners.get(id)?.queued ?? 0) + (this.arriving.get(id) ?? 0);
    if (waiting(conversationId) >= perConversation) {
      throw new AppError(
        'QUEUE_FULL',
        `${perConversation} messages already wait in this conversation (the limit, AGENTYARD_MAX_QUEUED_PER_CONVERSATION); send more once a turn has ended`,
        { bound: 'queuedPerConversation', limit: perConversation },
      );
    }
    let ofUser = 0;
    for (const [id, owner] of this.owners) if (owner === userId) ofUser += waiting(id);
    if (ofUser >= perUser) {
      throw new AppError(
        'QUEUE_FULL',
        `${perUser} of your messages already wait across your conversations (the limit, AGENTYARD_MAX_QUEUED_PER_USER); send more once a turn has ended`,
        { bound: 'queuedPerUser', limit: perUser },
      );
    }
  }

  /** A page of a directory of the conversation's workspace ('' is the root). */
  async listFiles(user: User, conversationId: string, path: string, page?: WorkspacePageRequest): Promise<WorkspaceListing> {
    await this.get(user, conversationId);
    return this.deps.sandboxes.workspaceFiles(conversationId).list(path, page);
  }

  async readFile(user: User, conversationId: string, path: string): Promise<Buffer> {
    await this.get(user, conversationId);
    return this.deps.sandboxes.workspaceFiles(conversationId).read(path);
  }

  /** The conversation's workspace files (for uploads and archives), after checking the user owns it. */
  async workspaceFiles(user: User, conversationId: string): Promise<WorkspaceFileAccess> {
    await this.get(user, conversationId);
    return this.deps.sandboxes.workspaceFiles(conversationId);
  }

  /** True while a turn of the conversation runs or waits. */
  isRunning(conversationId: string): boolean {
    return this.runners.get(conversationId)?.busy ?? false;
  }

  /** The gateway refused a model request of the conversation's running turn (a quota); the turn ends with this error. */
  noteRefusal(conversationId: string, turnId: string, error: { code: ErrorCode; message: string }): void {
    this.runners.get(conversationId)?.noteRefusal(turnId, error);
  }

  /** The conversation's egress log: every connection its sandboxes tried through the egress proxy, oldest first. */
  async egressLog(user: User, conversationId: string, limit: number): Promise<EgressRecord[]> {
    await this.get(user, conversationId);
    return this.deps.store.listEgress(conversationId, { limit });
  }

  /**
   * The other replica holding the conversation's lease, with the address it is reached at; null when this replica
   * holds it, or nobody does. Requests that need the sandbox (a terminal, an interrupt) are forwarded there.
   */
  async remoteHolder(conversationId: string): Promise<{ replicaId: string; url: string } | null> {
    if (this.runners.get(conversationId)?.owned) return null;
    const lease = await this.deps.store.getLease(conversationId);
    if (!lease || lease.replicaId === this.deps.presence.id || Date.parse(lease.expiresAt) <= Date.now()) return null;
    const replica = (await this.deps.store.listReplicas()).find((candidate) => candidate.id === lease.replicaId);
    return replica?.url ? { replicaId: replica.id, url: replica.url } : null;
  }

  /** Stops the running turn; false when none was running. */
  async interrupt(user: User, conversationId: string): Promise<boolean> {
    await this.get(user, conversationId);
    const runner = this.runners.get(conversationId);
    if (runner?.owned) return runner.interrupt();
    const turns = await this.deps.store.listTurns(conversationId);
    if (!turns.some((turn) => turn.status === 'running')) return false;
    throw new AppError('SANDBOX_UNAVAILABLE', 'the turn runs on another server replica; stopping it from this one is not supported yet, try again');
  }

  async events(user: User, conversationId: string, afterSeq: number, limit?: number): Promise<ConversationEvent[]> {
    await this.get(user, conversationId);
    return this.deps.store.listEvents(conversationId, { afterSeq, ...(limit ? { limit } : {}) });
  }

  subscribe(conversationId: string, listener: (event: ConversationEvent) => void): () => void {
    return this.deps.bus.subscribe(conversationId, listener);
  }

  /** Conversations with a live sandbox or a turn in progress. */
  activity(): { conversationId: string; busy: boolean; live: boolean; paused: boolean }[] {
    return [...this.runners.values()]
      .filter((runner) => runner.busy || runner.live)
      .map((runner) => ({ conversationId: runner.conversationId, busy: runner.busy, live: runner.live, paused: runner.paused }));
  }

  /** activity() with who owns each conversation and what it is, for administrators. */
  async activityDetails(): Promise<
    { conversationId: string; busy: boolean; live: boolean; paused: boolean; title: string | null; agentId: string | null; userId: string | null; userEmail: string | null }[]
  > {
    return Promise.all(
      this.activity().map(async (entry) => {
        const conversation = await this.deps.store.getConversation(entry.conversationId);
        const owner = conversation ? await this.deps.store.getUser(conversation.userId) : null;
        return { ...entry, title: conversation?.title ?? null, agentId: conversation?.agentId ?? null, userId: conversation?.userId ?? null, userEmail: owner?.email ?? null };
      }),
    );
  }

  /**
   * Holds the conversation's sandbox open for a terminal (starting or resuming it); the sandbox does not idle
   * until `detach`. The caller must own the conversation.
   */
  async attachSandbox(user: User, conversationId: string): Promise<SandboxAttachment> {
    await this.get(user, conversationId);
    const runner = this.runner(conversationId, user.id);
    if (!runner.owned) {
      const claimed = this.draining ? null : await this.deps.leases.claim(conversationId);
      if (!claimed) {
        throw new AppError('SANDBOX_UNAVAILABLE', 'the conversation’s sandbox runs on another server replica right now; try again once its turn has ended');
      }
      runner.own(claimed.fence);
    }
    return runner.attach();
  }

  /**
   * Shutting down (SIGTERM): no new turn starts here; idle conversations are handed over at once; running turns get
   * `graceMs` to finish, then are stopped (they end interrupted) and handed over. Queued turns stay in the store,
   * and the other replicas are woken to run them.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    if (this.janitor) clearInterval(this.janitor);
    for (const runner of this.runners.values()) runner.stopAfterCurrentTurn();
    const deadline = Date.now() + graceMs;
    for (;;) {
      for (const [conversationId, runner] of [...this.runners]) if (!runner.busy) await this.handOver(conversationId, runner);
      if (this.runners.size === 0 || Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (this.runners.size > 0) this.logger.warn({ conversations: this.runners.size }, 'turns still running at the end of the drain time; stopping them');
    await Promise.all([...this.runners].map(([conversationId, runner]) => this.handOver(conversationId, runner)));
  }

  /** Stops the conversation's work here, gives its lease up and wakes the other replicas for its queued turns. */
  private async handOver(conversationId: string, runner: ConversationRunner): Promise<void> {
    if (this.runners.get(conversationId) !== runner) return;
    this.runners.delete(conversationId);
    this.owners.delete(conversationId);
    await runner.close();
    if (!this.deps.leases.fenceOf(conversationId)) return;
    await this.deps.leases.release(conversationId);
    await this.deps.store.notifications.wake(conversationId).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.draining = true;
    if (this.janitor) clearInterval(this.janitor);
    await this.deps.store.releaseTask(takeoverTask, this.deps.presence.id).catch(() => undefined);
    for (const unlisten of this.unlisten.splice(0)) unlisten();
    this.deps.leases.stop();
    await Promise.all([...this.runners].map(([conversationId, runner]) => this.handOver(conversationId, runner)));
  }

  private runner(conversationId: string, userId: string): ConversationRunner {
    let runner = this.runners.get(conversationId);
    if (!runner) {
      const created = new ConversationRunner(conversationId, this.deps);
      created.onIdle(() => void this.releaseIdle(conversationId, created));
      runner = created;
      this.runners.set(conversationId, runner);
      this.owners.set(conversationId, userId);
    }
    return runner;
  }

}
