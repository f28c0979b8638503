import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hang, startScriptedModel, text, type ScriptedModel } from '../../test/support/scripted-model.ts';
import { createGateway, type Gateway, type GatewayUsage } from './gateway.ts';

let upstream: ScriptedModel;
let socketDir: string;
let gateway: Gateway;
let recorded: GatewayUsage[];

beforeAll(async () => {
  upstream = await startScriptedModel();
});
afterAll(() => upstream.close());

beforeEach(async () => {
  socketDir = await mkdtemp(join(tmpdir(), 'gw-settle-'));
  // Each test's own list: a record that a previous test's gateway makes late must not land here.
  const records: GatewayUsage[] = [];
  recorded = records;
  gateway = createGateway({
    upstreamUrl: upstream.url,
    credential: { kind: 'api-key', value: 'sk-ant-platform' },
    socketDir,
    // Recording takes a while (a database write): a turn's usage is final only once it is done.
    onUsage: async (record) => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      records.push(record);
    },
  });
});

afterEach(async () => {
  upstream.setScript(null);
  await gateway.closeAll();
  await rm(socketDir, { recursive: true, force: true });
});

/** Starts a streamed model request over the sandbox socket; `firstChunk` resolves when the answer starts. */
function startRequest(socketPath: string, token: string): { request: ClientRequest; firstChunk: Promise<void>; ended: Promise<void> } {
  const body = JSON.stringify({ model: 'claude-test-1', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] });
  let started!: () => void;
  let ended!: () => void;
  const firstChunk = new Promise<void>((resolve) => (started = resolve));
  const done = new Promise<void>((resolve) => (ended = resolve));
  const request = httpRequest(
    { socketPath, method: 'POST', path: '/v1/messages?beta=true', headers: { 'x-api-key': token, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } },
    (response) => {
      response.once('data', () => started());
      response.on('data', () => undefined);
      response.on('close', () => ended());
      response.on('error', () => undefined);
    },
  );
  request.on('error', () => ended());
  request.end(body);
  return { request, firstChunk, ended: done };
}

describe('Gateway.usageSettled', () => {
  it('waits until an answer the sandbox cut off mid-stream has been metered and recorded', async () => {
    upstream.setScript(() => text(Array.from({ length: 40 }, (_, index) => `part${index} `), { delayMs: 100 }));
    const { token, socketPath } = await gateway.open({ sandboxId: 'sbx1', userId: 'user_1', conversationId: 'conv_1' });
    gateway.setTurn(token, 'turn_1');
    const { request, firstChunk } = startRequest(socketPath, token);
    await firstChunk;
    gateway.setTurn(token, null);
    // The agent was stopped: it hangs up in the middle of the answer.
    request.destroy();

    expect(await gateway.usageSettled('turn_1', 10_000)).toBe(true);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ turnId: 'turn_1', conversationId: 'conv_1', model: 'claude-test-1' });
    expect(recorded[0]!.usage.inputTokens).toBeGreaterThan(0);
  });

  it('waits for the record of a whole answer, and answers at once for a turn without requests', async () => {
    const { token, socketPath } = await gateway.open({ sandboxId: 'sbx2', userId: 'user_2', conversationId: 'conv_2' });
    gateway.setTurn(token, 'turn_2');
    const { ended } = startRequest(socketPath, token);
    await ended;
    gateway.setTurn(token, null);
    expect(recorded).toHaveLength(0);
    expect(await gateway.usageSettled('turn_2', 10_000)).toBe(true);
    expect(recorded.map((record) => record.turnId)).toEqual(['turn_2']);
    expect(await gateway.usageSettled('turn_none', 10_000)).toBe(true);
  });

  it('gives up after its timeout while a request of the turn is still open', async () => {
    upstream.setScript(() => hang());
    const { token, socketPath } = await gateway.open({ sandboxId: 'sbx3', userId: 'user_3', conversationId: 'conv_3' });
    gateway.setTurn(token, 'turn_3');
    const before = upstream.requests.length;
    const { request, ended } = startRequest(socketPath, token);
    await expect.poll(() => upstream.requests.length).toBeGreaterThan(before);
    expect(await gateway.usageSettled('turn_3', 200)).toBe(false);
    request.destroy();
    await ended;
    // Nothing was answered, so nothing is recorded; the turn is settled all the same.
    expect(await gateway.usageSettled('turn_3', 10_000)).toBe(true);
    expect(recorded).toEqual([]);
  });
});
