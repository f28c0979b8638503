/** A small HTTP client for tests: JSON requests with a token or a session cookie, and an SSE reader. */

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface StreamedEvent {
  id: number | null;
  event: string;
  data: any;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly auth: { token: string } | { cookie: string } | null = null,
  ) {}

  withToken(token: string): ApiClient {
    return new ApiClient(this.baseUrl, { token });
  }

  get authHeaders(): Record<string, string> {
    if (!this.auth) return {};
    return 'token' in this.auth ? { authorization: `Bearer ${this.auth.token}` } : { cookie: this.auth.cookie };
  }

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const init: RequestInit = { method, headers: { ...this.authHeaders, ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${this.baseUrl}${path}`, init);
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body: parsed as T };
  }

  /** Registers (or signs in) and returns a client that uses the session cookie. */
  async register(email: string, password = 'correct horse battery'): Promise<ApiClient> {
    const response = await this.request('POST', '/api/auth/register', { email, password });
    if (response.status !== 201) throw new Error(`register failed: ${response.status} ${JSON.stringify(response.body)}`);
    const cookie = response.headers.get('set-cookie')?.split(';')[0];
    if (!cookie) throw new Error('register set no cookie');
    return new ApiClient(this.baseUrl, { cookie });
  }

  /** Registers a user and returns a client authenticated with a fresh API token. */
  async registerWithToken(email: string): Promise<ApiClient> {
    const session = await this.register(email);
    const created = await session.request('POST', '/api/tokens', { name: 'test' });
    if (created.status !== 201) throw new Error(`token creation failed: ${created.status}`);
    return this.withToken(created.body.token);
  }

  /**
   * Reads the conversation's SSE stream until `until` says stop (or the timeout passes, which throws).
   * `after` is sent as Last-Event-ID.
   */
  async readEvents(
    conversationId: string,
    options: { after?: number; query?: string; until: (events: StreamedEvent[]) => boolean; timeoutMs?: number },
  ): Promise<StreamedEvent[]> {
    const controller = new AbortController();
    const timeoutMs = options.timeoutMs ?? 60_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('timed out waiting for events'));
    }, timeoutMs);
    const headers: Record<string, string> = { ...this.authHeaders, accept: 'text/event-stream' };
    if (options.after !== undefined) headers['last-event-id'] = String(options.after);
    const events: StreamedEvent[] = [];
    try {
      const response = await fetch(`${this.baseUrl}/api/conversations/${conversationId}/events${options.query ?? ''}`, {
        headers,
        signal: controller.signal,
      });
      if (response.status !== 200 || !response.body) throw new Error(`event stream answered ${response.status}: ${await response.text()}`);
      if (options.until(events)) return events;
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let boundary: number;
        while ((boundary = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          const parsed = parseBlock(block);
          if (!parsed) continue;
          events.push(parsed);
          if (options.until(events)) return events;
        }
      }
      throw new Error(`event stream ended early after ${events.length} events:\n${describeEvents(events)}`);
    } catch (error) {
      // A hang fails with what was seen, not as a bare timeout.
      if (timedOut) throw new Error(`no awaited event within ${timeoutMs} ms; ${events.length} events seen:\n${describeEvents(events)}`, { cause: error });
      throw error;
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }
}

/** The last events, one line each, for failure messages. */
export function describeEvents(events: StreamedEvent[]): string {
  const shown = events.slice(-30).map((event) => `  ${event.id ?? '-'} ${event.event} ${JSON.stringify(event.data).slice(0, 300)}`);
  return (events.length > shown.length ? [`  … ${events.length - shown.length} earlier`, ...shown] : shown).join('\n');
}

function parseBlock(block: string): StreamedEvent | null {
  let id: number | null = null;
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || !line) continue;
    const [field, ...rest] = line.split(':');
    const value = rest.join(':').replace(/^ /, '');
    if (field === 'id') id = Number(value);
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  return { id, event, data: JSON.parse(data.join('\n')) };
}

/** `until` helper: stop once a turn.ended event for the turn (or any turn) has arrived. */
export const untilTurnEnded =
  (turnId?: string) =>
  (events: StreamedEvent[]): boolean =>
    events.some((event) => event.event === 'turn.ended' && (!turnId || event.data.turnId === turnId));
