import type { AgentsService } from '../agents/agents-service.ts';
import { defaultAgentId } from '../agents/agents-service.ts';
import { AppError, notFound, type ErrorCode } from '../core/errors.ts';
import type { ConversationEvent } from '../core/events.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import type { WorkspaceEntry, WorkspaceFileAccess } from '../core/sandbox.ts';
import type { Conversation, EgressRecord, Turn, User } from '../core/types.ts';
import { ConversationRunner, type RunnerDeps, type SandboxAttachment } from './conversation-runner.ts';

export interface ChatMessage {
  role: 'user' | 'assistant';
  turnId: string;
  text: string;
  createdAt: string;
}

export interface ConversationsServiceDeps extends RunnerDeps {
  agents: AgentsService;
  maxMessageBytes: number;
}

/** Conversations, their turns and their event log; owns one runner per active conversation. */
export class ConversationsService {
  private readonly runners = new Map<string, ConversationRunner>();
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
      const runner = this.runner(turn.conversationId);
      const error = { code: 'SERVER_RESTARTED' as const, message: 'the server stopped while this turn was running' };
      await runner.emit({ type: 'error', turnId: turn.id, ...error });
      await runner.emit({ type: 'turn.ended', turnId: turn.id, status: 'interrupted', usage: null, costUsd: null, durationMs: 0, error });
      await store.updateTurn(turn.id, { status: 'interrupted', endedAt: new Date().toISOString(), error: error.message });
    }
    const queued = await store.listTurnsByStatus(['queued']);
    queued.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const turn of queued) this.runner(turn.conversationId).enqueue(turn.id);
    if (queued.length) this.logger.info({ turns: queued.length }, 'resumed queued turns');
  }

  async create(user: User, input: { agentId?: string | undefined; title?: string | undefined }): Promise<Conversation> {
    const agent = await this.deps.agents.get(user, input.agentId ?? defaultAgentId);
    return this.deps.store.createConversation({ id: newId('conv'), userId: user.id, agentId: agent.id, title: input.title ?? 'New conversation' });
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
    const turn = await this.deps.store.createTurn({ id: newId('turn'), conversationId: conversation.id, input: text });
    const runner = this.runner(conversation.id);
    await runner.emit({ type: 'turn.queued', turnId: turn.id, text });
    runner.enqueue(turn.id);
    return turn;
  }

  /** Entries of a directory of the conversation's workspace ('' is the root). */
  async listFiles(user: User, conversationId: string, path: string): Promise<WorkspaceEntry[]> {
    await this.get(user, conversationId);
    return this.deps.sandboxes.workspaceFiles(conversationId).list(path);
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
    return this.runner(conversationId).attach();
  }

  async close(): Promise<void> {
    const runners = [...this.runners.values()];
    this.runners.clear();
    await Promise.all(runners.map((runner) => runner.close()));
  }

  private runner(conversationId: string): ConversationRunner {
    let runner = this.runners.get(conversationId);
    if (!runner) {
      runner = new ConversationRunner(conversationId, this.deps);
      this.runners.set(conversationId, runner);
    }
    return runner;
  }
}
