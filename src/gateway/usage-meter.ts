import { StringDecoder } from 'node:string_decoder';
import type { TokenUsage } from '../core/types.ts';

/** What one model response consumed, as read from the response itself. */
export interface MeteredUsage {
  /** The model that answered, or null when the response did not say. */
  model: string | null;
  usage: TokenUsage;
}

/** Reads token usage from a Messages API response body while it streams past. */
export interface UsageMeter {
  push(chunk: Buffer): void;
  /** The usage seen so far; null when the response carried none (errors, count_tokens). */
  finish(): MeteredUsage | null;
}

/** Picks the reader by content type: SSE streams or JSON bodies; anything else is not metered. */
export function createUsageMeter(contentType: string | undefined, options: { maxJsonBytes?: number } = {}): UsageMeter {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'text/event-stream') return new SseUsageMeter();
  if (type === 'application/json') return new JsonUsageMeter(options.maxJsonBytes ?? 16 * 1024 * 1024);
  return { push: () => undefined, finish: () => null };
}

type UsageFields = Partial<Record<keyof TokenUsage, number>>;

const wireNames: Array<[string, keyof TokenUsage]> = [
  ['input_tokens', 'inputTokens'],
  ['output_tokens', 'outputTokens'],
  ['cache_creation_input_tokens', 'cacheCreationInputTokens'],
  ['cache_read_input_tokens', 'cacheReadInputTokens'],
];

/** Copies the counts present in an API `usage` object over `target` (absent or non-numeric fields are kept). */
function mergeUsage(target: UsageFields, wire: unknown): boolean {
  if (!wire || typeof wire !== 'object') return false;
  let found = false;
  for (const [wireName, name] of wireNames) {
    const value = (wire as Record<string, unknown>)[wireName];
    if (typeof value === 'number' && Number.isFinite(value)) {
      target[name] = value;
      found = true;
    }
  }
  return found;
}

function complete(fields: UsageFields): TokenUsage {
  return {
    inputTokens: fields.inputTokens ?? 0,
    outputTokens: fields.outputTokens ?? 0,
    cacheCreationInputTokens: fields.cacheCreationInputTokens ?? 0,
    cacheReadInputTokens: fields.cacheReadInputTokens ?? 0,
  };
}

/**
 * SSE: `message_start.message.usage` carries the input side (and a provisional output count);
 * `message_delta.usage` carries counts that are cumulative for the message, so a later value replaces an
 * earlier one rather than adding to it.
 */
class SseUsageMeter implements UsageMeter {
  private static readonly maxLineBytes = 4 * 1024 * 1024;
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  private skippingLongLine = false;
  private eventName = '';
  /** Whether the current event is one that carries usage. */
  private usageEvent = false;
  private data: string[] = [];
  private readonly fields: UsageFields = {};
  private model: string | null = null;
  private seen = false;

  push(chunk: Buffer): void {
    const text = this.pending + this.decoder.write(chunk);
    let start = 0;
    let newline: number;
    while ((newline = text.indexOf('\n', start)) >= 0) {
      const end = newline > start && text.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      const skipping = this.skippingLongLine;
      this.skippingLongLine = false;
      if (!skipping) this.line(text, start, end);
      start = newline + 1;
    }
    let rest = start === 0 ? text : text.slice(start);
    // A line this long is no usage event; drop it rather than buffer without bound.
    if (rest.length > SseUsageMeter.maxLineBytes) {
      this.skippingLongLine = true;
      rest = '';
    }
    this.pending = rest;
  }

  finish(): MeteredUsage | null {
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    if (rest !== '' && !this.skippingLongLine) this.line(rest, 0, rest.endsWith('\r') ? rest.length - 1 : rest.length);
    this.line('', 0, 0);
    return this.seen ? { model: this.model, usage: complete(this.fields) } : null;
  }

  /** One line, `text[start, end)`, read in place: most lines of a stream are deltas that are skipped unread. */
  private line(text: string, start: number, end: number): void {
    if (start === end) {
      this.dispatch();
      return;
    }
    if (text.charCodeAt(start) === 58) return; // a ':' comment
    // Data of an event already named and carrying no usage is not kept.
    if (this.eventName !== '' && !this.usageEvent && text.startsWith('data', start)) return;
    const line = text.slice(start, end);
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') {
      this.eventName = value;
      this.usageEvent = value === 'message_start' || value === 'message_delta';
    } else if (field === 'data') this.data.push(value);
  }

  private dispatch(): void {
    const name = this.eventName;
    const data = this.data.length === 1 ? this.data[0]! : this.data.join('\n');
    this.eventName = '';
    this.usageEvent = false;
    if (this.data.length > 0) this.data = [];
    if (data === '') return;
    // Only two event kinds carry usage; skip parsing the many deltas.
    if (name !== '' && name !== 'message_start' && name !== 'message_delta') return;
    if (name === '' && !data.includes('"message_start"') && !data.includes('"message_delta"')) return;
    let event: { type?: unknown; message?: { model?: unknown; usage?: unknown }; usage?: unknown };
    try {
      event = JSON.parse(data) as typeof event;
    } catch {
      return;
    }
    if (event.type === 'message_start') {
      if (typeof event.message?.model === 'string') this.model = event.message.model;
      if (mergeUsage(this.fields, event.message?.usage)) this.seen = true;
    } else if (event.type === 'message_delta') {
      if (mergeUsage(this.fields, event.usage)) this.seen = true;
    }
  }
}

/** JSON: a non-streaming message has `usage` and `model` at the top level. */
class JsonUsageMeter implements UsageMeter {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private overflow = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    if (this.overflow) return;
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      this.overflow = true;
      this.chunks.length = 0;
      return;
    }
    this.chunks.push(chunk);
  }

  finish(): MeteredUsage | null {
    if (this.overflow || this.chunks.length === 0) return null;
    let body: { model?: unknown; usage?: unknown };
    try {
      body = JSON.parse(Buffer.concat(this.chunks).toString('utf8')) as typeof body;
    } catch {
      return null;
    }
    const fields: UsageFields = {};
    if (!body || typeof body !== 'object' || !mergeUsage(fields, body.usage)) return null;
    return { model: typeof body.model === 'string' ? body.model : null, usage: complete(fields) };
  }
}

/** A model request whose usage is being metered, pending until it is done and every hold on it is released. */
export interface PendingRequest {
  /** Adds one more thing the request waits for (its upstream answer, the record of its usage); call the result once it is over. */
  hold(): () => void;
  /** The request's own part is over (its answer to the sandbox has ended); idempotent. */
  done(): void;
}

/**
 * Model requests of each turn whose usage is not recorded yet, so that a turn's end can wait for the usage of what it
 * started, however it ended (an answer cut off by a stop is still metered once the stream has closed).
 */
export class PendingUsage {
  private readonly pending = new Map<string, number>();
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Starts tracking a request of the turn (null: no turn, nothing is tracked). */
  track(turnId: string | null): PendingRequest {
    if (turnId === null) return { hold: () => () => undefined, done: () => undefined };
    this.pending.set(turnId, (this.pending.get(turnId) ?? 0) + 1);
    let holds = 0;
    let finished = false;
    const release = (): void => {
      holds -= 1;
      if (holds > 0 || finished) return;
      finished = true;
      this.finish(turnId);
    };
    const hold = (): (() => void) => {
      if (finished) return () => undefined;
      holds += 1;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        release();
      };
    };
    return { hold, done: hold() };
  }

  /** Resolves once no request of the turn is pending (true), or after `timeoutMs` (false). */
  settled(turnId: string, timeoutMs: number): Promise<boolean> {
    if (!this.pending.has(turnId)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiters = this.waiters.get(turnId) ?? new Set<() => void>();
      this.waiters.set(turnId, waiters);
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        waiters.delete(wake);
        if (waiters.size === 0 && this.waiters.get(turnId) === waiters) this.waiters.delete(turnId);
        resolve(false);
      }, timeoutMs);
      waiters.add(wake);
    });
  }

  private finish(turnId: string): void {
    const left = (this.pending.get(turnId) ?? 1) - 1;
    if (left > 0) {
      this.pending.set(turnId, left);
      return;
    }
    this.pending.delete(turnId);
    for (const wake of this.waiters.get(turnId) ?? []) wake();
    this.waiters.delete(turnId);
  }
}
