import type { ConversationEvent, TokenUsage, TurnStatus } from '../api/types.ts';

export interface TextItem {
  kind: 'text';
  id: string;
  text: string;
  done: boolean;
}

export interface ToolItem {
  kind: 'tool';
  id: string;
  name: string;
  input: unknown;
  output: string | null;
  isError: boolean;
}

export interface TurnView {
  id: string;
  status: TurnStatus;
  input: string;
  queuedAt: string;
  items: (TextItem | ToolItem)[];
  errors: { code: string; message: string }[];
  usage: TokenUsage | null;
  costUsd: number | null;
  durationMs: number | null;
}

export type Activity =
  | { kind: 'idle' }
  | { kind: 'thinking'; turnId: string }
  | { kind: 'writing'; turnId: string }
  | { kind: 'tool'; turnId: string; name: string };

/** Tools whose end may have changed the workspace's files. */
const fileTools = new Set(['Write', 'Edit', 'MultiEdit', 'NotebookEdit', 'Bash']);

/**
 * The conversation as the chat shows it, built from its events. Applying a batch replaces only the turns it
 * touched (new objects), so unchanged turns keep their identity and need no re-render.
 */
export class ConversationState {
  turns: TurnView[] = [];
  /** Errors that belong to no turn. */
  errors: { seq: number; code: string; message: string }[] = [];
  lastSeq = 0;
  /** Bumped whenever a tool that may write files ends: the file tree reloads. */
  filesVersion = 0;
  private readonly index = new Map<string, number>();
  private readonly tools = new Map<string, string>();

  apply(events: ConversationEvent[]): void {
    const touched = new Map<number, TurnView>();
    const turn = (turnId: string, createdAt: string, input = ''): TurnView => {
      let position = this.index.get(turnId);
      if (position === undefined) {
        position = this.turns.length;
        this.index.set(turnId, position);
        this.turns.push({ id: turnId, status: 'queued', input, queuedAt: createdAt, items: [], errors: [], usage: null, costUsd: null, durationMs: null });
      }
      let view = touched.get(position);
      if (!view) {
        view = { ...this.turns[position]!, items: [...this.turns[position]!.items], errors: [...this.turns[position]!.errors] };
        touched.set(position, view);
        this.turns[position] = view;
      }
      return view;
    };
    const replaceItem = (view: TurnView, id: string, update: (item: TextItem | ToolItem | undefined) => TextItem | ToolItem): void => {
      const at = view.items.findIndex((item) => item.id === id);
      if (at < 0) view.items.push(update(undefined));
      else view.items[at] = update(view.items[at]);
    };

    for (const event of events) {
      if (event.seq <= this.lastSeq) continue;
      this.lastSeq = event.seq;
      switch (event.type) {
        case 'turn.queued': {
          const view = turn(event.turnId, event.createdAt, event.text);
          view.input = event.text;
          break;
        }
        case 'turn.started': {
          const view = turn(event.turnId, event.createdAt, event.text);
          view.status = 'running';
          if (!view.input) view.input = event.text;
          break;
        }
        case 'message.delta': {
          const view = turn(event.turnId, event.createdAt);
          replaceItem(view, event.messageId, (item) => ({
            kind: 'text',
            id: event.messageId,
            text: (item?.kind === 'text' ? item.text : '') + event.text,
            done: false,
          }));
          break;
        }
        case 'message.completed': {
          const view = turn(event.turnId, event.createdAt);
          replaceItem(view, event.messageId, () => ({ kind: 'text', id: event.messageId, text: event.text, done: true }));
          break;
        }
        case 'tool.started': {
          const view = turn(event.turnId, event.createdAt);
          this.tools.set(event.toolUseId, event.name);
          replaceItem(view, event.toolUseId, () => ({ kind: 'tool', id: event.toolUseId, name: event.name, input: event.input, output: null, isError: false }));
          break;
        }
        case 'tool.ended': {
          const view = turn(event.turnId, event.createdAt);
          replaceItem(view, event.toolUseId, (item) => ({
            kind: 'tool',
            id: event.toolUseId,
            name: item?.kind === 'tool' ? item.name : (this.tools.get(event.toolUseId) ?? 'tool'),
            input: item?.kind === 'tool' ? item.input : null,
            output: event.output,
            isError: event.isError,
          }));
          if (fileTools.has(this.tools.get(event.toolUseId) ?? '')) this.filesVersion += 1;
          break;
        }
        case 'turn.ended': {
          const view = turn(event.turnId, event.createdAt);
          view.status = event.status;
          view.usage = event.usage;
          view.costUsd = event.costUsd;
          view.durationMs = event.durationMs;
          if (event.error && !view.errors.some((error) => error.code === event.error!.code && error.message === event.error!.message)) view.errors.push(event.error);
          // A text the CLI never completed (an interrupt) is final as it stands.
          view.items = view.items.map((item) => (item.kind === 'text' && !item.done ? { ...item, done: true } : item));
          break;
        }
        case 'error': {
          if (event.turnId) {
            const view = turn(event.turnId, event.createdAt);
            if (!view.errors.some((error) => error.code === event.code && error.message === event.message)) view.errors.push({ code: event.code, message: event.message });
          } else this.errors = [...this.errors, { seq: event.seq, code: event.code, message: event.message }];
          break;
        }
      }
    }
  }

  /** What the agent is doing now, for the status line. */
  activity(): Activity {
    const running = this.turns.find((view) => view.status === 'running');
    if (!running) return { kind: 'idle' };
    const last = running.items.at(-1);
    if (last?.kind === 'tool' && last.output === null) return { kind: 'tool', turnId: running.id, name: last.name };
    if (last?.kind === 'text' && !last.done) return { kind: 'writing', turnId: running.id };
    return { kind: 'thinking', turnId: running.id };
  }

  get queued(): number {
    return this.turns.filter((view) => view.status === 'queued').length;
  }
}
