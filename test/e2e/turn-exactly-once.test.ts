import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type StreamedEvent, untilTurnEnded } from '../support/api-client.ts';
import { removeDataDir } from '../support/data-dir.ts';
import { agentProcesses } from '../support/host-processes.ts';
import { platformSecret, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { error, hang, startScriptedModel, text, type ModelRequest, type RecordedRequest, type Reply, type ScriptedModel } from '../support/scripted-model.ts';
import { killServer, startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { testConfiguration, testDatabaseFor } from '../support/test-configuration.ts';

/** The newest text the user wrote in the request: the last text block of its last user message. */
function newestUserText(request: ModelRequest): string {
  const last = [...(request.body.messages ?? [])].reverse().find((message) => message.role === 'user');
  if (!last) return '';
  if (typeof last.content === 'string') return last.content;
  const texts = (last.content as Array<{ type?: string; text?: unknown }>).filter((block) => block.type === 'text' && typeof block.text === 'string');
  return String(texts.at(-1)?.text ?? '');
}

/** How many of the request's user text blocks carry `marker`: how many times the model was sent that message. */
function timesSent(request: RecordedRequest, marker: string): number {
  const messages = (request.body as { messages?: Array<{ role: string; content: unknown }> }).messages ?? [];
  let count = 0;
  for (const message of messages) {
    if (message.role !== 'user') continue;
    const blocks = typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : (message.content as Array<{ type?: string; text?: unknown }>);
    for (const block of blocks) if (block.type === 'text' && typeof block.text === 'string' && block.text.includes(marker)) count += 1;
  }
  return count;
}

describe('each user message reaches the model exactly once', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  /** Markers whose first request has been answered already: a scenario misbehaves only once. */
  const seen = new Set<string>();

  beforeAll(async () => {
    test = await startTestPlatform();
    alice = await test.api.registerWithToken('alice@example.com');
    // FAIL-*, HANG-* and SLOW-* misbehave the first time their message is the newest one, then answer normally.
    test.model.setScript((request): Reply => {
      const newest = newestUserText(request);
      const marker = /\b(?:FAIL|HANG|SLOW)-[A-Z0-9]+/.exec(newest)?.[0];
      if (marker && !seen.has(marker)) {
        seen.add(marker);
        if (marker.startsWith('FAIL')) return error(400, { message: 'scripted failure' });
        if (marker.startsWith('HANG')) return hang();
        return text(Array.from({ length: 80 }, (_, index) => `slow${index} `), { delayMs: 250 });
      }
      return text(`answered: ${newest}`);
    });
  });
  afterAll(() => test?.close());

  const newConversation = async (): Promise<string> => (await alice.request('POST', '/api/conversations', {})).body.id;

  /** Sends a message and waits for its turn to end; returns the conversation's events up to then. */
  const say = async (conversationId: string, message: string): Promise<StreamedEvent[]> => {
    const sent = await alice.request('POST', `/api/conversations/${conversationId}/messages`, { text: message });
    expect(sent.status).toBe(202);
    return alice.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId) });
  };
  /** The last model request that carried `marker` in a user message. */
  const requestFor = (marker: string): RecordedRequest => {
    const found = test.model.requests.filter((request) => request.path.startsWith('/v1/messages?') && timesSent(request, marker) > 0).at(-1);
    if (!found) throw new Error(`no model request carried ${marker}`);
    return found;
  };
  /** The `turn.ended` of the last turn in `events`. */
  const ended = (events: StreamedEvent[]): Record<string, any> => events.findLast((event) => event.event === 'turn.ended')!.data;

  it('leaves a failed turn out: the next message and a Retry reach the model once, the failed one not at all', async () => {
    const conversationId = await newConversation();
    expect(ended(await say(conversationId, 'KEEP-A1 remember this')).status).toBe('completed');
    const holding = await agentProcesses(test.dataDir);
    expect(holding).toHaveLength(1);
    expect(ended(await say(conversationId, 'FAIL-A2 this one fails'))).toMatchObject({ status: 'failed', error: { code: 'UPSTREAM_ERROR' } });
    // The CLI that holds the failed message is stopped, and the next one is started ahead of the next message.
    await expect.poll(async () => (await agentProcesses(test.dataDir)).filter((pid) => !holding.includes(pid)).length, { timeout: 30_000 }).toBe(1);
    await expect.poll(async () => (await agentProcesses(test.dataDir)).filter((pid) => holding.includes(pid)), { timeout: 30_000 }).toEqual([]);

    // Retry sends the same message again, as a new turn: the model sees it once.
    expect(ended(await say(conversationId, 'FAIL-A2 this one fails')).status).toBe('completed');
    const retried = requestFor('FAIL-A2 this one fails');
    expect(timesSent(retried, 'KEEP-A1')).toBe(1);
    expect(timesSent(retried, 'FAIL-A2')).toBe(1);

    expect(ended(await say(conversationId, 'NEXT-A3 and then')).status).toBe('completed');
    const next = requestFor('NEXT-A3');
    expect([timesSent(next, 'KEEP-A1'), timesSent(next, 'FAIL-A2'), timesSent(next, 'NEXT-A3')]).toEqual([1, 1, 1]);
  });

  it('leaves out a failed first turn too: the conversation goes on in a new session', async () => {
    const conversationId = await newConversation();
    expect(ended(await say(conversationId, 'FAIL-F1 the very first message')).status).toBe('failed');
    expect(ended(await say(conversationId, 'NEXT-F2 the second')).status).toBe('completed');
    const next = requestFor('NEXT-F2');
    expect([timesSent(next, 'FAIL-F1'), timesSent(next, 'NEXT-F2')]).toEqual([0, 1]);
  });

  it('leaves out a turn stopped before the model answered: the next message and a Retry reach the model once', async () => {
    const conversationId = await newConversation();
    expect(ended(await say(conversationId, 'KEEP-B1 remember this')).status).toBe('completed');
    const sent = await alice.request('POST', `/api/conversations/${conversationId}/messages`, { text: 'HANG-B2 never answered' });
    // Stopped once the model has the request, before it answered anything.
    await expect.poll(() => test.model.requests.some((request) => timesSent(request, 'HANG-B2') > 0), { timeout: 30_000 }).toBe(true);
    expect((await alice.request('POST', `/api/conversations/${conversationId}/interrupt`)).body).toEqual({ interrupted: true });
    const stopped = await alice.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId) });
    expect(ended(stopped).status).toBe('interrupted');
    expect(stopped.some((event) => event.event === 'message.delta' && event.data.turnId === sent.body.turnId)).toBe(false);

    expect(ended(await say(conversationId, 'NEXT-B3 something else')).status).toBe('completed');
    const next = requestFor('NEXT-B3');
    expect([timesSent(next, 'KEEP-B1'), timesSent(next, 'HANG-B2'), timesSent(next, 'NEXT-B3')]).toEqual([1, 0, 1]);

    expect(ended(await say(conversationId, 'HANG-B2 never answered')).status).toBe('completed');
    const retried = requestFor('HANG-B2 never answered');
    expect([timesSent(retried, 'KEEP-B1'), timesSent(retried, 'HANG-B2'), timesSent(retried, 'NEXT-B3')]).toEqual([1, 1, 1]);
  });

  it('keeps a turn stopped mid-answer as it is, also when a later failure makes the agent start again', async () => {
    const conversationId = await newConversation();
    expect(ended(await say(conversationId, 'KEEP-C1 remember this')).status).toBe('completed');
    const sent = await alice.request('POST', `/api/conversations/${conversationId}/messages`, { text: 'SLOW-C2 talk slowly' });
    await alice.readEvents(conversationId, { until: (events) => events.some((event) => event.event === 'message.delta' && event.data.turnId === sent.body.turnId) });
    await alice.request('POST', `/api/conversations/${conversationId}/interrupt`);
    expect(ended(await alice.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId) })).status).toBe('interrupted');

    expect(ended(await say(conversationId, 'NEXT-C3 go on')).status).toBe('completed');
    const next = requestFor('NEXT-C3');
    expect([timesSent(next, 'KEEP-C1'), timesSent(next, 'SLOW-C2'), timesSent(next, 'NEXT-C3')]).toEqual([1, 1, 1]);
    // The partial answer stays in the history.
    expect(JSON.stringify(next.body)).toContain('slow0 ');

    // A failed turn stops the agent; the next one resumes at the last turn kept, the stopped one included.
    expect(ended(await say(conversationId, 'FAIL-C4 fails')).status).toBe('failed');
    expect(ended(await say(conversationId, 'LAST-C5 still there?')).status).toBe('completed');
    const last = requestFor('LAST-C5');
    expect(['KEEP-C1', 'SLOW-C2', 'NEXT-C3', 'FAIL-C4', 'LAST-C5'].map((marker) => timesSent(last, marker))).toEqual([1, 1, 1, 0, 1]);
    expect(JSON.stringify(last.body)).toContain('slow0 ');
  });
});

describe('a turn cut short by a server restart before the model answered', () => {
  let model: ScriptedModel;
  let dataDir: string;
  let server: ServerProcess | null = null;
  const configuration = testConfiguration();
  let database: Record<string, string> = {};

  beforeAll(async () => {
    model = await startScriptedModel();
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-once-'));
    if (configuration.store === 'postgres') database = { DATABASE_URL: await testDatabaseFor(dataDir) };
  });
  afterAll(async () => {
    if (server) await killServer(server, 'SIGTERM');
    await model?.close();
    await removeDataDir(dataDir);
  });

  it('is left out: the next message after the restart reaches the model alone', async () => {
    const env = { ...configuration.env, ...database, AGENTYARD_DATA_DIR: dataDir, ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: platformSecret, AGENTYARD_MODEL_MAX_RETRIES: '0' };
    model.setScript((request) => (newestUserText(request).includes('HANG-R1') ? hang() : text('answered')));
    server = await startServerProcess(env);
    const alice = await new ApiClient(server.url).registerWithToken('alice@example.com');
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    const first = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'HANG-R1 the first message' });
    await expect.poll(() => model.requests.some((request) => timesSent(request, 'HANG-R1') > 0), { timeout: 60_000 }).toBe(true);
    await killServer(server, 'SIGKILL');
    server = null;

    server = await startServerProcess(env);
    const again = new ApiClient(server.url, alice.auth);
    const events = await again.readEvents(conversation.id, { until: untilTurnEnded(first.body.turnId) });
    expect(events.at(-1)!.data).toMatchObject({ status: 'interrupted', error: { code: 'SERVER_RESTARTED' } });
    const next = await again.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'NEXT-R2 after the restart' });
    const after = await again.readEvents(conversation.id, { until: untilTurnEnded(next.body.turnId) });
    expect(after.at(-1)!.data.status).toBe('completed');
    const request = model.requests.filter((entry) => entry.path.startsWith('/v1/messages?') && timesSent(entry, 'NEXT-R2') > 0).at(-1)!;
    expect([timesSent(request, 'HANG-R1'), timesSent(request, 'NEXT-R2')]).toEqual([0, 1]);
  });
});
