import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  runClaude,
  startScriptedModel,
  text,
  toModelRequest,
  toolUse,
  type CliRun,
  type MessagesBody,
  type ScriptedModel,
} from './scripted-model.ts';

let model: ScriptedModel;
let directory: string;

beforeAll(async () => {
  model = await startScriptedModel();
});

afterAll(async () => {
  await model.close();
});

beforeEach(async () => {
  model.setScript(null);
  model.requests.length = 0;
  directory = await mkdtemp(join(tmpdir(), 'scripted-model-'));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

function deltas(run: CliRun): string[] {
  return run.events.flatMap(({ event }) => {
    if (event.type !== 'stream_event') return [];
    const inner = event.event as { type: string; delta?: { type: string; text?: string } };
    return inner.type === 'content_block_delta' && inner.delta?.type === 'text_delta' ? [inner.delta.text ?? ''] : [];
  });
}

describe('ScriptedModel with the real Claude Code CLI', () => {
  it('streams a text turn as text deltas and ends it with a result', async () => {
    const run = await runClaude({ baseUrl: model.url, cwd: directory, home: directory, prompts: ['say hello'] });

    expect(run.stderr).toBe('');
    expect(deltas(run)).toEqual(['Hello from the scripted model. ', 'You said: say hello']);
    expect(run.results).toHaveLength(1);
    expect(run.results[0]).toMatchObject({
      is_error: false,
      result: 'Hello from the scripted model. You said: say hello',
    });
    expect(run.exitCode).toBe(0);
  });

  it('runs the Bash then Write steps of SCN_TOOLS in the working directory', async () => {
    const run = await runClaude({
      baseUrl: model.url,
      cwd: directory,
      home: directory,
      prompts: ['SCN_TOOLS BASH<<echo from-bash > first.txt>> WRITE<<second.txt|from the write tool>>'],
    });

    expect(run.results[0]).toMatchObject({ is_error: false, result: 'All done after 2 tool results.', num_turns: 3 });
    expect(await readFile(join(directory, 'first.txt'), 'utf8')).toBe('from-bash\n');
    expect(await readFile(join(directory, 'second.txt'), 'utf8')).toBe('from the write tool');
    const messageRequests = model.requests.filter((request) => request.path.startsWith('/v1/messages'));
    expect(messageRequests.map((request) => toModelRequest(request.body as MessagesBody).toolResults)).toEqual([0, 1, 2]);
  });

  it('ends an ERR401 turn with an error result within seconds', async () => {
    const started = Date.now();
    const run = await runClaude({ baseUrl: model.url, cwd: directory, home: directory, prompts: ['ERR401 please'] });

    expect(Date.now() - started).toBeLessThan(10_000);
    expect(run.results[0]).toMatchObject({ is_error: true, api_error_status: 401 });
  });

  it('records the API key and the preconnect the CLI sends', async () => {
    await runClaude({
      baseUrl: model.url,
      cwd: directory,
      home: directory,
      prompts: ['hi'],
      env: { ANTHROPIC_API_KEY: 'sk-ant-recorded' },
    });

    const post = model.requests.find((request) => request.method === 'POST');
    expect(post?.path).toBe('/v1/messages?beta=true');
    expect(post?.headers['x-api-key']).toBe('sk-ant-recorded');
    expect(model.requests.some((request) => request.method === 'HEAD' && request.path === '/')).toBe(true);
  });

  it('lets a test script tool calls and report exact usage', async () => {
    model.setScript((request) =>
      request.toolResults === 0
        ? toolUse('Bash', { command: 'echo scripted > scripted.txt' }, { usage: { input_tokens: 11, output_tokens: 7 } })
        : text('finished', { usage: { input_tokens: 13, output_tokens: 5, cache_read_input_tokens: 3 } }),
    );
    const run = await runClaude({ baseUrl: model.url, cwd: directory, home: directory, prompts: ['anything'] });

    expect(await readFile(join(directory, 'scripted.txt'), 'utf8')).toBe('scripted\n');
    expect(model.requests.flatMap((request) => (request.usage ? [request.usage] : []))).toEqual([
      { input_tokens: 11, output_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      { input_tokens: 13, output_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 3 },
    ]);
    expect(run.results[0]).toMatchObject({
      usage: { input_tokens: 24, output_tokens: 12, cache_read_input_tokens: 3 },
    });
  });
});

describe('ScriptedModel over plain HTTP', () => {
  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${model.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('answers a non-streaming request with a JSON message carrying the usage', async () => {
    model.setScript(() => text(['a', 'b'], { usage: { input_tokens: 5, output_tokens: 2 } }));
    const response = await post('/v1/messages', { model: 'claude-x', messages: [{ role: 'user', content: 'hi' }] });

    expect(response.status).toBe(200);
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    expect(await response.json()).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [{ type: 'text', text: 'ab' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 5, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
  });

  it('streams SSE with the input usage first and the cumulative output in message_delta', async () => {
    model.setScript(() => text(['one ', 'two'], { usage: { input_tokens: 9, output_tokens: 4, cache_creation_input_tokens: 2 } }));
    const response = await post('/v1/messages?beta=true', { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const body = await response.text();
    const events = body
      .split('\n\n')
      .filter((block) => block.trim() !== '')
      .map((block) => JSON.parse(block.split('\n').find((line) => line.startsWith('data: '))!.slice(6)) as Record<string, any>);

    expect(response.headers.get('content-type')).toContain('text/event-stream');
    expect(events.map((event) => event.type)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(events[0]!.message.usage).toEqual({
      input_tokens: 9,
      output_tokens: 1,
      cache_creation_input_tokens: 2,
      cache_read_input_tokens: 0,
    });
    expect(events[5]).toMatchObject({ delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 4 } });
  });

  it('answers errors in the API error shape', async () => {
    const response = await post('/v1/messages', { model: 'm', messages: [{ role: 'user', content: 'ERR429' }] });

    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
  });

  it('answers the preconnect and count_tokens', async () => {
    expect((await fetch(model.url, { method: 'HEAD' })).status).toBe(200);
    const response = await post('/v1/messages/count_tokens', { model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    expect(await response.json()).toEqual({ input_tokens: expect.any(Number) });
  });

  it('finds the last real user text and counts the tool results after it', () => {
    const request = toModelRequest({
      messages: [
        { role: 'user', content: [{ type: 'text', text: '<system-reminder>\nnoise\n</system-reminder>' }, { type: 'text', text: 'do it' }] },
        { role: 'system', content: 'agent listing' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'Bash', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'ok' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't2', name: 'Bash', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't2', content: 'ok' }, { type: 'text', text: '<system-reminder>x</system-reminder>' }] },
      ],
    });

    expect(request.lastUserText).toBe('do it');
    expect(request.toolResults).toBe(2);
  });
});
