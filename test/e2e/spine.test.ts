import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { agentProcesses } from '../support/host-processes.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

describe('the spine: a message runs the real CLI in a sandbox and streams back', () => {
  let test: TestPlatform;
  let alice: ApiClient;

  beforeAll(async () => {
    test = await startTestPlatform();
    alice = await test.api.registerWithToken('alice@example.com');
  });
  afterAll(() => test?.close());

  it('runs Bash and Write in the conversation’s own workspace and streams text and tools in order', async () => {
    const created = await alice.request('POST', '/api/conversations', { title: 'tools' });
    expect(created.status).toBe(201);
    const other = await alice.request('POST', '/api/conversations', { title: 'other' });
    const conversationId: string = created.body.id;

    const sent = await alice.request('POST', `/api/conversations/${conversationId}/messages`, {
      text: 'SCN_TOOLS BASH<<echo hi > hello.txt>> WRITE<<second.txt|written by the scripted model>>',
    });
    expect(sent.status).toBe(202);
    const turnId: string = sent.body.turnId;

    const events = await alice.readEvents(conversationId, { until: untilTurnEnded(turnId) });
    const types = events.map((event) => event.event);
    expect(types[0]).toBe('turn.queued');
    expect(types[1]).toBe('turn.started');
    expect(types).toContain('message.delta');

    const toolEvents = events.filter((event) => event.event.startsWith('tool.'));
    expect(toolEvents.map((event) => `${event.event}:${event.data.name ?? ''}`)).toEqual([
      'tool.started:Bash',
      'tool.ended:',
      'tool.started:Write',
      'tool.ended:',
    ]);
    expect(toolEvents[0]!.data.input.command).toBe('echo hi > hello.txt');
    expect(toolEvents[1]!.data).toMatchObject({ toolUseId: toolEvents[0]!.data.toolUseId, isError: false });
    expect(toolEvents[3]!.data).toMatchObject({ toolUseId: toolEvents[2]!.data.toolUseId, isError: false });

    const completed = events.filter((event) => event.event === 'message.completed').map((event) => event.data.text);
    expect(completed.at(-1)).toBe('All done after 2 tool results.');
    const ended = events.at(-1)!;
    expect(ended.event).toBe('turn.ended');
    expect(ended.data).toMatchObject({ turnId, status: 'completed' });
    expect(ended.data.usage.outputTokens).toBeGreaterThan(0);
    expect(ended.data.durationMs).toBeGreaterThan(0);

    // Every SSE id is the event's sequence number, strictly increasing from 1.
    expect(events.map((event) => event.id)).toEqual(events.map((_, index) => index + 1));

    const workspace = test.workspaceDir(conversationId);
    expect(readFileSync(path.join(workspace, 'hello.txt'), 'utf8')).toBe('hi\n');
    expect(readFileSync(path.join(workspace, 'second.txt'), 'utf8')).toBe('written by the scripted model');
    const otherWorkspace = test.workspaceDir(other.body.id);
    expect(existsSync(path.join(otherWorkspace, 'hello.txt'))).toBe(false);
    expect(existsSync(path.join(otherWorkspace, 'second.txt'))).toBe(false);

    // Reconnecting with Last-Event-ID yields exactly the later events.
    const cut = 3;
    const resumed = await alice.readEvents(conversationId, { after: cut, until: untilTurnEnded(turnId) });
    expect(resumed.map((event) => event.id)).toEqual(events.slice(cut).map((event) => event.id));
    expect(resumed.map((event) => event.event)).toEqual(types.slice(cut));
    const viaQuery = await alice.readEvents(conversationId, { query: `?after=${events.length - 1}`, until: untilTurnEnded(turnId) });
    expect(viaQuery.map((event) => event.id)).toEqual([events.length]);

    // The conversation reads back with its messages.
    const detail = await alice.request('GET', `/api/conversations/${conversationId}`);
    expect(detail.status).toBe(200);
    expect(detail.body.turns).toHaveLength(1);
    expect(detail.body.turns[0]).toMatchObject({ id: turnId, status: 'completed' });
    expect(detail.body.messages[0]).toMatchObject({ role: 'user', turnId });
    expect(detail.body.messages.at(-1)).toMatchObject({ role: 'assistant', text: 'All done after 2 tool results.' });
  });

  it('keeps one CLI process for follow-ups, queues messages sent during a turn, and resumes after interrupt', async () => {
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    // CLI processes of other conversations (earlier tests) are left out of the count.
    const earlier = new Set(await agentProcesses(test.dataDir));
    const ours = async (): Promise<string[]> => (await agentProcesses(test.dataDir)).filter((pid) => !earlier.has(pid));
    const first = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'SCN_SLOW first' });
    const second = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'second message' });
    expect(second.status).toBe(202);

    // Interrupt the slow first turn once it is streaming.
    await alice.readEvents(conversation.id, { until: (events) => events.some((event) => event.event === 'message.delta') });
    const cli = await ours();
    expect(cli).toHaveLength(1);
    const interrupted = await alice.request('POST', `/api/conversations/${conversation.id}/interrupt`);
    expect(interrupted.body).toEqual({ interrupted: true });

    const events = await alice.readEvents(conversation.id, { until: untilTurnEnded(second.body.turnId) });
    const ends = events.filter((event) => event.event === 'turn.ended');
    expect(ends.map((event) => [event.data.turnId, event.data.status])).toEqual([
      [first.body.turnId, 'interrupted'],
      [second.body.turnId, 'completed'],
    ]);
    const replies = events.filter((event) => event.event === 'message.completed' && event.data.turnId === second.body.turnId);
    expect(replies.at(-1)!.data.text).toContain('You said: second message');
    // The queued follow-up ran in the same CLI process: none was started for it.
    expect(await ours()).toEqual(cli);

    // The follow-up reached the model with the earlier exchange in its history (same Claude session).
    const lastRequest = test.model.requests.filter((request) => request.path.startsWith('/v1/messages')).at(-1)!;
    expect(JSON.stringify(lastRequest.body)).toContain('SCN_SLOW first');
  });

  it('answers the prototype’s POST /api/conversation for a new and an existing conversation', async () => {
    const created = await alice.request('POST', '/api/conversation', { message: 'hello there' });
    expect(created.status).toBe(200);
    expect(created.body.reply).toBe('Hello from the scripted model. You said: hello there');
    expect(created.body.conversationId).toMatch(/^conv_/);
    expect(created.body.usage.inputTokens).toBeGreaterThan(0);

    const followUp = await alice.request('POST', '/api/conversation', { conversationId: created.body.conversationId, message: 'and again' });
    expect(followUp.status).toBe(200);
    expect(followUp.body.conversationId).toBe(created.body.conversationId);
    expect(followUp.body.reply).toBe('Hello from the scripted model. You said: and again');
    expect(followUp.body.turnId).not.toBe(created.body.turnId);

    const unauthenticated = await test.api.request('POST', '/api/conversation', { message: 'hi' });
    expect(unauthenticated.status).toBe(401);
  });
});
