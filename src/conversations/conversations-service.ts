import type { AgentsService } from '../agents/agents-service.ts';
import { defaultAgentId } from '../agents/agents-service.ts';
import { AppError, notFound, type ErrorCode } from '../core/errors.ts';
import type { ConversationEvent } from '../core/events.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import type { WorkspaceFileAccess, WorkspaceListing, WorkspacePageRequest } from '../core/sandbox.ts';
import type { Conversation, EgressRecord, Turn, User } from '../core/types.ts';
import { ConversationRunner, type RunnerDeps, type SandboxAttachment } from './conversation-runner.ts';
import { titleFromMessage, untitledConversation } from './conversation-title.ts';

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
}

/** Conversations, their turns and their event log; owns one runner per active conversation. */
export class ConversationsService {
  private readonly runners = new Map<string, ConversationRunner>();
  /** Who owns each conversation that has a runner, for the per-user bounds. */
  private readonly owners = new Map<string, string>();
  /** Messages accepted but not queued yet (their turn is being stored), per conversation. */
  private readonly arriving = new Map<string, number>();
  private readonly logger: Logger;

  constructor(private readonly deps: ConversationsServiceDeps) {
    this.logger = deps.logger;
  }

  /**
   * Start-up recovery: a turn left running by a previous process is marked interrupted (its events up to
   * then are kept); queued turns run again in order.
   */
  async recover(): Promise<void> {
    const { store } = this.deps;
    for (const turn of await store.listTurnsByStatus(['running'])) {
      await (await this.recoveredRunner(turn.conversationId)).endAfterRestart(turn);
    }
    const queued = await store.listTurnsByStatus(['queued']);
    queued.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const turn of queued) (await this.recoveredRunner(turn.conversationId)).enqueue(turn.id);
    if (queued.length) this.logger.info({ turns: queued.length }, 'resumed queued turns');
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
    return { conversation, turns, messages, running: this.runners.get(conversation.id)?.busy ?? false };
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
      const turn = await this.deps.store.createTurn({ id: newId('turn'), conversationId: conversation.id, input: text });
      await runner.emit({ type: 'turn.queued', turnId: turn.id, text });
      runner.enqueue(turn.id);
      await this.titleFromFirstMessage(conversation, text);
      return turn;
    } finally {
      const left = (this.arriving.get(conversation.id) ?? 1) - 1;
      if (left > 0) this.arriving.set(conversation.id, left);
      else this.arriving.delete(conversation.id);
      releaseSlot();
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

  /** Stops the running turn; false when none was running. */
  async interrupt(user: User, conversationId: string): Promise<boolean> {
    await this.get(user, conversationId);
    return this.runners.get(conversationId)?.interrupt() ?? false;
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
    return this.runner(conversationId, user.id).attach();
  }

  async close(): Promise<void> {
    const runners = [...this.runners.values()];
    this.runners.clear();
    this.owners.clear();
    await Promise.all(runners.map((runner) => runner.close()));
  }

  private runner(conversationId: string, userId: string): ConversationRunner {
    let runner = this.runners.get(conversationId);
    if (!runner) {
      runner = new ConversationRunner(conversationId, this.deps);
      this.runners.set(conversationId, runner);
      this.owners.set(conversationId, userId);
    }
    return runner;
  }

  /** The runner of a conversation with turns left over from a previous process. */
  private async recoveredRunner(conversationId: string): Promise<ConversationRunner> {
    const existing = this.runners.get(conversationId);
    if (existing) return existing;
    const conversation = await this.deps.store.getConversation(conversationId);
    return this.runner(conversationId, conversation?.userId ?? '');
  }
}
