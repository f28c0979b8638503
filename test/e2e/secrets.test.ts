import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { untilTurnEnded } from '../support/api-client.ts';
import { captureLog, type CapturedLog } from '../support/captured-log.ts';
import { platformSecret, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { error } from '../support/scripted-model.ts';

describe('secrets in logs and answers', () => {
  let test: TestPlatform;
  let captured: CapturedLog;

  beforeAll(async () => {
    captured = captureLog();
    test = await startTestPlatform({ logger: captured.logger });
  });
  afterAll(() => test?.close());

  it('never writes the model credential, sandbox tokens, API tokens, cookies or passwords to the log', async () => {
    const password = 'my very secret password';
    const register = await test.api.request('POST', '/api/auth/register', { email: 'alice@example.com', password });
    const cookie = register.headers.get('set-cookie')!.split(';')[0]!;
    const token = (await test.api.request('POST', '/api/tokens', { name: 'x' }, { cookie })).body.token as string;
    const alice = test.api.withToken(token);
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});

    // A turn with tools, then one the upstream refuses, so error paths log too.
    const first = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'SCN_TOOLS BASH<<env>>' });
    const events = await alice.readEvents(conversation.id, { until: untilTurnEnded(first.body.turnId) });
    const sandboxToken = /ANTHROPIC_API_KEY=(\S+)/.exec(events.find((event) => event.event === 'tool.ended')!.data.output)?.[1];
    expect(sandboxToken).toMatch(/^sbx_/);
    test.model.setScript(() => error(401, { message: 'invalid x-api-key' }));
    const second = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'now fail' });
    const failed = await alice.readEvents(conversation.id, { after: events.at(-1)!.id!, until: untilTurnEnded(second.body.turnId) });
    test.model.setScript(null);
    expect(failed.at(-1)!.data.status).toBe('failed');
    await new Promise((resolve) => setTimeout(resolve, 200));

    const log = captured.text();
    expect(log.length).toBeGreaterThan(1000);
    expect(log).toContain('turn ended');
    for (const secret of [platformSecret, sandboxToken!, token, cookie.split('=')[1]!, password]) {
      expect(log).not.toContain(secret);
    }
    // Nothing the API answered carries them either.
    const answers = JSON.stringify([events, failed, (await alice.request('GET', `/api/conversations/${conversation.id}`)).body]);
    expect(answers).not.toContain(platformSecret);
    expect(answers).not.toContain(token);
  });
});
