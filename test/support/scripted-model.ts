/**
 * A scripted stand-in for the Anthropic Messages API, good enough for the real Claude Code CLI (2.1.197).
 *
 * It answers `HEAD /` and `GET /` (the CLI's preconnect), `POST /v1/messages` (streaming SSE or a JSON
 * message, any query string such as `?beta=true`) and `POST /v1/messages/count_tokens`. Every request is
 * recorded in `model.requests`, with the usage reported for it once it has been answered.
 *
 * Tests script replies with `model.setScript((request, context) => reply)` using the reply builders
 * `text`, `toolUse`, `error`, `overloaded`, `streamError` and `hang`. Without a script, the default script
 * below picks a scenario from keywords in the last user message:
 *
 *   SCN_TOOLS              step 0: Bash tool_use; step 1: Write tool_use; step 2: text "All done after 2 tool results."
 *     BASH<<cmd>>            the Bash command (default `echo hi > hello.txt`)
 *     WRITE<<path|content>>  the Write target and content (default `second.txt|written by the scripted model`);
 *                            a relative path is resolved against the CLI's working directory, read from
 *                            "Primary working directory: ..." in the request (the Write tool needs absolute paths)
 *   SCN_SLOW               20 text deltas ("chunk0 " … "chunk19 ") 200 ms apart
 *   ERR400 ERR401 ERR403 ERR429 ERR500 ERR529
 *                          that HTTP error with the real API's error JSON (429 carries `retry-after: 1`)
 *   ERRSTREAM              a streamed request gets some text then an SSE `event: error` (overloaded_error);
 *                          the CLI's non-streaming fallback request then gets a plain text answer
 *   ERRHANG                accepts the request and never answers
 *   anything else          "Hello from the scripted model. You said: <prompt>"
 *
 * `runClaude` runs the real CLI (stream-json, bypassPermissions, no retries) against any base URL.
 *
 * The "step" is `request.toolResults`: how many tool_result blocks follow the last real user text.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Token counts in the API's own shape (snake_case), as sent on the wire. */
export interface ModelUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export interface RecordedRequest {
  method: string;
  /** The path with its query string, e.g. `/v1/messages?beta=true`. */
  path: string;
  /** Header names lowercased; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The parsed JSON body, or null when there was none (or it was not JSON). */
  body: unknown;
  /** The usage reported in the reply, once it has been answered; null for errors and non-message requests. */
  usage: ModelUsage | null;
}

/** The parts of a Messages API request body the scripts look at (the rest is kept as sent). */
export interface MessagesBody {
  model?: string;
  stream?: boolean;
  messages?: Array<{ role: string; content: unknown }>;
  system?: unknown;
  tools?: Array<{ name?: string }>;
  [key: string]: unknown;
}

export interface ModelRequest {
  body: MessagesBody;
  headers: Record<string, string>;
  model: string;
  stream: boolean;
  /** The text of the last user message with real text (system reminders and tool results left out). */
  lastUserText: string;
  /** How many tool_result blocks follow that message: 0 on a fresh prompt, 1 after the first tool ran, … */
  toolResults: number;
  /** The CLI's working directory, read from "Primary working directory: …" in the request, if present. */
  cwd: string | null;
  /** Names of the tools offered to the model. */
  toolNames: string[];
}

export interface ScriptContext {
  /** 0-based index of this request among the /v1/messages requests served so far. */
  index: number;
  /** The built-in keyword script, so a custom script can fall back to it. */
  defaultScript: Script;
}

export type Script = (request: ModelRequest, context: ScriptContext) => Reply;

export interface ReplyOptions {
  /** Overrides the usage reported (the rest is computed from the request and the reply). */
  usage?: Partial<ModelUsage>;
  /** Milliseconds between deltas (slow streams). */
  delayMs?: number;
}

export type Reply =
  | { kind: 'text'; chunks: string[]; options: ReplyOptions }
  | { kind: 'tool_use'; name: string; input: Record<string, unknown>; text: string | null; options: ReplyOptions }
  | { kind: 'error'; status: number; type: string; message: string; retryAfter: number | null }
  | { kind: 'stream_error'; text: string; errorType: string; message: string }
  | { kind: 'hang' };

/** A text answer, streamed as one text_delta per chunk. */
export function text(chunks: string[] | string, options: ReplyOptions = {}): Reply {
  return { kind: 'text', chunks: typeof chunks === 'string' ? [chunks] : chunks, options };
}

/** Optional text, then a tool_use block; stop_reason `tool_use`. */
export function toolUse(
  name: string,
  input: Record<string, unknown>,
  options: ReplyOptions & { text?: string } = {},
): Reply {
  const { text: leadText, ...rest } = options;
  return { kind: 'tool_use', name, input, text: leadText ?? null, options: rest };
}

const errorTypes: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

/** An HTTP error with the API's error body `{type:"error", error:{type, message}, request_id}`. */
export function error(status: number, options: { type?: string; message?: string; retryAfter?: number } = {}): Reply {
  return {
    kind: 'error',
    status,
    type: options.type ?? errorTypes[status] ?? 'api_error',
    message: options.message ?? `scripted error ${status}`,
    retryAfter: options.retryAfter ?? null,
  };
}

/** HTTP 529 overloaded_error. */
export function overloaded(): Reply {
  return error(529, { message: 'Overloaded' });
}

/** A stream that starts normally, sends `text`, then an SSE `event: error` and ends. */
export function streamError(options: { text?: string; type?: string; message?: string } = {}): Reply {
  return {
    kind: 'stream_error',
    text: options.text ?? 'partial ',
    errorType: options.type ?? 'overloaded_error',
    message: options.message ?? 'Overloaded',
  };
}

/** Accepts the request and never answers (until the client gives up or the server closes). */
export function hang(): Reply {
  return { kind: 'hang' };
}

export interface ScriptedModel {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Replaces the script; null restores the default keyword script. */
  setScript(script: Script | null): void;
  close(): Promise<void>;
}

export interface ScriptedModelOptions {
  script?: Script;
}

export async function startScriptedModel(options: ScriptedModelOptions = {}): Promise<ScriptedModel> {
  const model = new ScriptedModelServer(options.script ?? null);
  await model.listen();
  return model;
}

class ScriptedModelServer implements ScriptedModel {
  readonly requests: RecordedRequest[] = [];
  private script: Script | null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private messageCount = 0;
  private port = 0;

  constructor(script: Script | null) {
    this.script = script;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  setScript(script: Script | null): void {
    this.script = script;
  }

  async listen(): Promise<void> {
    // Idle connections are kept as long as the real API keeps them: with Node's default of 5 s, a platform that
    // stalls for seconds (SQLite waiting out a lock) would reuse a connection the server is closing at that moment.
    const server = createServer({ keepAliveTimeout: 65_000 }, (request, response) => {
      this.handle(request, response).catch((cause: unknown) => {
        if (!response.headersSent) {
          sendJson(response, 500, errorBody('api_error', `scripted model failed: ${String(cause)}`));
        } else {
          response.destroy();
        }
      });
    });
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const raw = await readBody(request);
    let body: unknown = null;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = null;
      }
    }
    const path = request.url ?? '/';
    const recorded: RecordedRequest = {
      method: request.method ?? 'GET',
      path,
      headers: flattenHeaders(request),
      body,
      usage: null,
    };
    this.requests.push(recorded);
    const pathname = path.split('?')[0];

    if (pathname === '/' && (request.method === 'HEAD' || request.method === 'GET')) {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end(request.method === 'GET' ? 'ok' : undefined);
      return;
    }
    if (request.method === 'POST' && pathname === '/v1/messages/count_tokens') {
      sendJson(response, 200, { input_tokens: estimateInputTokens(raw.length) });
      return;
    }
    if (request.method !== 'POST' || pathname !== '/v1/messages') {
      sendJson(response, 404, errorBody('not_found_error', `no route for ${request.method} ${pathname}`));
      return;
    }
    if (!body || typeof body !== 'object') {
      sendJson(response, 400, errorBody('invalid_request_error', 'body must be a JSON object'));
      return;
    }

    const index = this.messageCount++;
    const modelRequest = toModelRequest(body as MessagesBody, recorded.headers);
    const reply = (this.script ?? defaultScript)(modelRequest, { index, defaultScript });
    await this.serve(reply, modelRequest, raw.length, index, recorded, response);
  }

  private async serve(
    reply: Reply,
    request: ModelRequest,
    bodyBytes: number,
    index: number,
    recorded: RecordedRequest,
    response: ServerResponse,
  ): Promise<void> {
    const requestId = `req_scripted_${index}`;
    switch (reply.kind) {
      case 'hang':
        // Keep the connection open; close() destroys it.
        return;
      case 'error': {
        const headers: Record<string, string> = { 'request-id': requestId };
        if (reply.retryAfter !== null) headers['retry-after'] = String(reply.retryAfter);
        sendJson(response, reply.status, { ...errorBody(reply.type, reply.message), request_id: requestId }, headers);
        return;
      }
      case 'stream_error': {
        if (!request.stream) {
          sendJson(response, 529, { ...errorBody(reply.errorType, reply.message), request_id: requestId });
          return;
        }
        const usage = buildUsage(bodyBytes, reply.text, {});
        const sse = new SseWriter(response, requestId);
        sse.event('message_start', messageStart(index, request.model, usage));
        sse.event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
        sse.event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: reply.text } });
        sse.event('error', { type: 'error', error: { type: reply.errorType, message: reply.message } });
        response.end();
        return;
      }
      case 'text':
      case 'tool_use':
        break;
    }

    const blocks = contentBlocks(reply, index);
    const outputText = blocks.map((block) => (block.type === 'text' ? block.text : JSON.stringify(block.input))).join('');
    const usage = buildUsage(bodyBytes, outputText, reply.options.usage ?? {});
    const stopReason = reply.kind === 'tool_use' ? 'tool_use' : 'end_turn';
    recorded.usage = usage;

    if (!request.stream) {
      sendJson(
        response,
        200,
        {
          id: `msg_scripted_${index}`,
          type: 'message',
          role: 'assistant',
          model: request.model,
          content: blocks,
          stop_reason: stopReason,
          stop_sequence: null,
          usage,
        },
        { 'request-id': requestId },
      );
      return;
    }

    const delayMs = reply.options.delayMs ?? 0;
    const sse = new SseWriter(response, requestId);
    sse.event('message_start', messageStart(index, request.model, usage));
    for (const [blockIndex, block] of blocks.entries()) {
      if (block.type === 'text') {
        sse.event('content_block_start', { type: 'content_block_start', index: blockIndex, content_block: { type: 'text', text: '' } });
        const chunks = reply.kind === 'text' && blockIndex === 0 ? reply.chunks : [block.text];
        for (const [chunkIndex, chunk] of chunks.entries()) {
          if (delayMs > 0 && chunkIndex > 0) await this.sleep(delayMs);
          if (response.destroyed) return;
          sse.event('content_block_delta', { type: 'content_block_delta', index: blockIndex, delta: { type: 'text_delta', text: chunk } });
        }
      } else {
        sse.event('content_block_start', {
          type: 'content_block_start',
          index: blockIndex,
          content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} },
        });
        const json = JSON.stringify(block.input);
        const half = Math.ceil(json.length / 2);
        for (const part of [json.slice(0, half), json.slice(half)]) {
          if (part === '') continue;
          sse.event('content_block_delta', { type: 'content_block_delta', index: blockIndex, delta: { type: 'input_json_delta', partial_json: part } });
        }
      }
      sse.event('content_block_stop', { type: 'content_block_stop', index: blockIndex });
    }
    sse.event('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    });
    sse.event('message_stop', { type: 'message_stop' });
    response.end();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }
}

type ContentBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

function contentBlocks(reply: Reply, index: number): ContentBlock[] {
  if (reply.kind === 'text') return [{ type: 'text', text: reply.chunks.join('') }];
  if (reply.kind !== 'tool_use') return [];
  const blocks: ContentBlock[] = [];
  if (reply.text !== null) blocks.push({ type: 'text', text: reply.text });
  blocks.push({ type: 'tool_use', id: `toolu_scripted_${index}`, name: reply.name, input: reply.input });
  return blocks;
}

function messageStart(index: number, model: string, usage: ModelUsage): Record<string, unknown> {
  return {
    type: 'message_start',
    message: {
      id: `msg_scripted_${index}`,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // Like the real API, message_start carries the input side and a provisional output count;
      // the final (cumulative) output_tokens comes in message_delta.
      usage: { ...usage, output_tokens: Math.min(1, usage.output_tokens) },
    },
  };
}

function buildUsage(bodyBytes: number, outputText: string, overrides: Partial<ModelUsage>): ModelUsage {
  return {
    input_tokens: estimateInputTokens(bodyBytes),
    output_tokens: Math.max(1, Math.ceil(outputText.length / 4)),
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    ...overrides,
  };
}

function estimateInputTokens(bodyBytes: number): number {
  return Math.max(1, Math.ceil(bodyBytes / 4));
}

class SseWriter {
  constructor(
    private readonly response: ServerResponse,
    requestId: string,
  ) {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'request-id': requestId,
    });
    response.flushHeaders();
  }

  event(name: string, data: unknown): void {
    if (this.response.destroyed) return;
    this.response.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}

function errorBody(type: string, message: string): { type: 'error'; error: { type: string; message: string } } {
  return { type: 'error', error: { type, message } };
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  response.end(payload);
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function flattenHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

// ---------------------------------------------------------------------------------------------------
// Reading the request

export function toModelRequest(body: MessagesBody, headers: Record<string, string> = {}): ModelRequest {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  let lastUserText = '';
  let toolResults = 0;
  for (let position = messages.length - 1; position >= 0; position--) {
    const message = messages[position];
    if (!message || message.role !== 'user') continue;
    const { texts, toolResultCount } = readUserContent(message.content);
    const realText = texts.filter((value) => !isNoise(value)).join('\n').trim();
    if (realText !== '') {
      lastUserText = realText;
      break;
    }
    toolResults += toolResultCount;
  }
  return {
    body,
    headers,
    model: typeof body.model === 'string' ? body.model : 'claude-scripted',
    stream: body.stream === true,
    lastUserText,
    toolResults,
    cwd: findWorkingDirectory(body),
    toolNames: Array.isArray(body.tools) ? body.tools.map((tool) => String(tool.name ?? '')) : [],
  };
}

function readUserContent(content: unknown): { texts: string[]; toolResultCount: number } {
  if (typeof content === 'string') return { texts: [content], toolResultCount: 0 };
  const texts: string[] = [];
  let toolResultCount = 0;
  if (Array.isArray(content)) {
    for (const block of content as Array<{ type?: string; text?: unknown }>) {
      if (block.type === 'text' && typeof block.text === 'string') texts.push(block.text);
      if (block.type === 'tool_result') toolResultCount++;
    }
  }
  return { texts, toolResultCount };
}

/** Text the CLI adds around the user's words: reminders, command wrappers, interrupt markers. */
function isNoise(value: string): boolean {
  const trimmed = value.trim();
  return (
    trimmed === '' ||
    trimmed.startsWith('<system-reminder>') ||
    trimmed.startsWith('<local-command') ||
    trimmed.startsWith('<command-') ||
    trimmed.startsWith('[Request interrupted')
  );
}

function findWorkingDirectory(body: MessagesBody): string | null {
  const match = /Primary working directory: ([^\n"\\]+)/.exec(JSON.stringify(body));
  return match?.[1]?.trim() ?? null;
}

// ---------------------------------------------------------------------------------------------------
// The default keyword script

function between(source: string, open: string, close = '>>'): string | null {
  const start = source.indexOf(open);
  if (start < 0) return null;
  const end = source.indexOf(close, start + open.length);
  if (end < 0) return null;
  return source.slice(start + open.length, end);
}

/** The keyword-driven script used when a test sets none; see the keywords in the file comment. */
export const defaultScript: Script = (request) => {
  const prompt = request.lastUserText;
  for (const status of [400, 401, 403, 429, 500, 529]) {
    if (prompt.includes(`ERR${status}`)) {
      return error(status, { message: `scripted ${status}`, ...(status === 429 ? { retryAfter: 1 } : {}) });
    }
  }
  if (prompt.includes('ERRSTREAM')) {
    return request.stream ? streamError() : text('Recovered without streaming.');
  }
  if (prompt.includes('ERRHANG')) return hang();
  if (prompt.includes('SCN_SLOW')) {
    return text(
      Array.from({ length: 20 }, (_, position) => `chunk${position} `),
      { delayMs: 200 },
    );
  }
  if (prompt.includes('SCN_TOOLS')) {
    if (request.toolResults === 0) {
      const command = between(prompt, 'BASH<<') ?? 'echo hi > hello.txt';
      return toolUse('Bash', { command, description: 'Run the scripted command' }, { text: 'I will run a command.' });
    }
    if (request.toolResults === 1) {
      const [path = 'second.txt', content = 'written by the scripted model'] = (
        between(prompt, 'WRITE<<') ?? 'second.txt|written by the scripted model'
      ).split('|');
      const filePath = isAbsolute(path) ? path : join(request.cwd ?? '/workspace', path);
      return toolUse('Write', { file_path: filePath, content }, { text: 'Now I will write a file.' });
    }
    return text(`All done after ${request.toolResults} tool results.`);
  }
  return text(['Hello from the scripted model. ', `You said: ${prompt}`]);
};

// ---------------------------------------------------------------------------------------------------
// Running the real CLI against a model server (for tests)

/** The pinned Claude Code binary. */
export const claudeBinary = fileURLToPath(
  new URL('../../node_modules/@anthropic-ai/claude-code/bin/claude.exe', import.meta.url),
);

export interface CliEvent {
  /** Milliseconds since the CLI was started. */
  atMs: number;
  event: { type: string; subtype?: string; [key: string]: unknown };
}

export interface CliRun {
  events: CliEvent[];
  /** The `result` event of each turn, in order. */
  results: Array<Record<string, unknown>>;
  exitCode: number | null;
  stderr: string;
}

export interface RunClaudeOptions {
  /** ANTHROPIC_BASE_URL */
  baseUrl: string;
  cwd: string;
  /** HOME of the CLI (its state goes to HOME/.claude). */
  home: string;
  /** One user message per turn; the next is written after the previous turn's `result`. */
  prompts: string[];
  /** Defaults to `ANTHROPIC_API_KEY=sk-ant-scripted-key`; add or replace variables here (undefined removes one). */
  env?: Record<string, string | undefined>;
  /** Kills the CLI after this long (default 30 s). */
  timeoutMs?: number;
}

/**
 * Runs the real CLI in stream-json mode (bypassPermissions, no retries, no nonessential traffic) with an
 * explicit environment; nothing is inherited from the host but PATH.
 */
export function runClaude(options: RunClaudeOptions): Promise<CliRun> {
  const merged: Record<string, string | undefined> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: options.home,
    ANTHROPIC_BASE_URL: options.baseUrl,
    ANTHROPIC_API_KEY: 'sk-ant-scripted-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    // Root may only bypass permissions with exactly IS_SANDBOX=1.
    IS_SANDBOX: '1',
    CLAUDE_CODE_MAX_RETRIES: '0',
    ...options.env,
  };
  const env = Object.fromEntries(
    Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  const child = spawn(
    claudeBinary,
    [
      '-p',
      '--input-format', 'stream-json',
      '--output-format', 'stream-json',
      '--verbose',
      '--include-partial-messages',
      '--permission-mode', 'bypassPermissions',
    ],
    { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const started = Date.now();
  const run: CliRun = { events: [], results: [], exitCode: null, stderr: '' };
  const prompts = [...options.prompts];
  const sendNext = (): void => {
    const prompt = prompts.shift();
    if (prompt === undefined) {
      child.stdin.end();
      return;
    }
    child.stdin.write(`${JSON.stringify({ type: 'user', message: { role: 'user', content: prompt } })}\n`);
  };
  let buffer = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line === '') continue;
      const event = JSON.parse(line) as CliEvent['event'];
      run.events.push({ atMs: Date.now() - started, event });
      if (event.type === 'result') {
        run.results.push(event);
        sendNext();
      }
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    run.stderr += chunk;
  });
  // Writing after the CLI exits early (e.g. a refused flag) must not crash the test process.
  child.stdin.on('error', () => undefined);
  sendNext();
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      run.exitCode = code;
      resolve(run);
    });
  });
}
