import type { EventData } from '../core/events.ts';

/** What the CLI reported when a turn finished (its `result` line). */
export interface TurnResult {
  isError: boolean;
  subtype: string;
  terminalReason: string | null;
  /** The final reply text, or the error text when isError. */
  text: string;
  apiErrorStatus: number | null;
  sessionId: string | null;
}

/** How far the model got in the turn so far. */
export interface TurnProgress {
  /** The model has streamed text or asked for a tool: the turn is worth keeping in the Claude session. */
  answered: boolean;
  /** The uuid of the turn's last assistant message in the Claude session (a `--resume-session-at` point). */
  lastAssistantUuid: string | null;
}

export type MappedLine =
  | { kind: 'events'; events: EventData[] }
  | { kind: 'session'; sessionId: string }
  | { kind: 'result'; result: TurnResult }
  | { kind: 'ignored' };

/** Tool output kept in an event; the full output stays in Claude's own transcript. */
const maxToolOutputChars = 64 * 1024;

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: unknown): string => (typeof value === 'string' ? value : '');

function toolOutput(content: unknown): string {
  const joined =
    typeof content === 'string'
      ? content
      : Array.isArray(content)
        ? content.map((part) => (isObject(part) && part.type === 'text' ? text(part.text) : '')).join('')
        : '';
  return joined.length > maxToolOutputChars ? `${joined.slice(0, maxToolOutputChars)}\n… [truncated]` : joined;
}

/**
 * Turns Claude Code's stream-json lines into the platform's events. One mapper per CLI process;
 * `beginTurn` names the turn that following lines belong to. Unknown line types are ignored.
 */
export class EventMapper {
  private turnId = '';
  private streamingMessageId = '';
  private turnProgress: TurnProgress = { answered: false, lastAssistantUuid: null };

  beginTurn(turnId: string): void {
    this.turnId = turnId;
    this.turnProgress = { answered: false, lastAssistantUuid: null };
  }

  /** What the model produced in the current turn, as seen so far. */
  get progress(): TurnProgress {
    return { ...this.turnProgress };
  }

  map(line: unknown): MappedLine {
    if (!isObject(line)) return { kind: 'ignored' };
    switch (line.type) {
      case 'system':
        return line.subtype === 'init' && typeof line.session_id === 'string'
          ? { kind: 'session', sessionId: line.session_id }
          : { kind: 'ignored' };
      case 'stream_event':
        return this.mapStreamEvent(line.event);
      case 'assistant':
        return this.mapAssistant(line.message, line.uuid);
      case 'user':
        return this.mapToolResults(line.message);
      case 'result':
        return { kind: 'result', result: this.mapResult(line) };
      default:
        return { kind: 'ignored' };
    }
  }

  private mapStreamEvent(event: unknown): MappedLine {
    if (!isObject(event)) return { kind: 'ignored' };
    if (event.type === 'message_start' && isObject(event.message)) {
      this.streamingMessageId = text(event.message.id);
      return { kind: 'ignored' };
    }
    if (event.type === 'content_block_delta' && isObject(event.delta) && event.delta.type === 'text_delta') {
      const delta = text(event.delta.text);
      if (!delta) return { kind: 'ignored' };
      this.turnProgress.answered = true;
      return {
        kind: 'events',
        events: [{ type: 'message.delta', turnId: this.turnId, messageId: this.streamingMessageId, text: delta }],
      };
    }
    return { kind: 'ignored' };
  }

  private mapAssistant(message: unknown, uuid: unknown): MappedLine {
    // A "<synthetic>" message carries an API error; the turn's result reports it.
    if (!isObject(message) || message.model === '<synthetic>' || !Array.isArray(message.content)) return { kind: 'ignored' };
    // One line per content block, each with its own uuid: the last one ends the answer so far.
    if (typeof uuid === 'string' && uuid) this.turnProgress.lastAssistantUuid = uuid;
    const messageId = text(message.id);
    const events: EventData[] = [];
    for (const block of message.content) {
      if (!isObject(block)) continue;
      if (block.type === 'text' && text(block.text)) {
        events.push({ type: 'message.completed', turnId: this.turnId, messageId, text: text(block.text) });
      } else if (block.type === 'tool_use') {
        events.push({ type: 'tool.started', turnId: this.turnId, toolUseId: text(block.id), name: text(block.name), input: block.input ?? {} });
      }
    }
    if (events.length) this.turnProgress.answered = true;
    return events.length ? { kind: 'events', events } : { kind: 'ignored' };
  }

  private mapToolResults(message: unknown): MappedLine {
    if (!isObject(message) || !Array.isArray(message.content)) return { kind: 'ignored' };
    const events: EventData[] = [];
    for (const block of message.content) {
      if (!isObject(block) || block.type !== 'tool_result') continue;
      events.push({
        type: 'tool.ended',
        turnId: this.turnId,
        toolUseId: text(block.tool_use_id),
        output: toolOutput(block.content),
        isError: block.is_error === true,
      });
    }
    return events.length ? { kind: 'events', events } : { kind: 'ignored' };
  }

  private mapResult(line: Json): TurnResult {
    const errors = Array.isArray(line.errors) ? line.errors.filter((entry) => typeof entry === 'string') : [];
    return {
      isError: line.is_error === true,
      subtype: text(line.subtype),
      terminalReason: typeof line.terminal_reason === 'string' ? line.terminal_reason : null,
      text: text(line.result) || errors.join('; '),
      apiErrorStatus: typeof line.api_error_status === 'number' ? line.api_error_status : null,
      sessionId: typeof line.session_id === 'string' ? line.session_id : null,
    };
  }
}
