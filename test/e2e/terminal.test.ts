import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { TerminalClient } from '../support/terminal-client.ts';

describe('terminal WebSocket', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let aliceCookie: ApiClient;
  let conversationId: string;
  let wsBase: string;
  let origin: string;

  beforeAll(async () => {
    test = await startTestPlatform();
    aliceCookie = await test.api.register('alice@example.com');
    const token = await aliceCookie.request('POST', '/api/tokens', { name: 'terminal' });
    alice = test.api.withToken(token.body.token);
    conversationId = (await alice.request('POST', '/api/conversations', {})).body.id;
    wsBase = test.platform.url.replace(/^http/, 'ws');
    origin = test.platform.url;
  });
  afterAll(() => test?.close());

  const url = (query = '', id = conversationId): string => `${wsBase}/api/conversations/${id}/terminal${query}`;

  it('opens a shell in the same sandbox the agent writes in, at the requested size, and resizes it', async () => {
    const sent = await alice.request('POST', `/api/conversations/${conversationId}/messages`, { text: 'SCN_TOOLS BASH<<echo from-agent > agent-file.txt>>' });
    await alice.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId) });

    const terminal = await TerminalClient.connect(url('?cols=120&rows=40'), { ...aliceCookie.authHeaders, origin });
    const attached = await terminal.waitForMessage('attached');
    expect(attached).toMatchObject({ start: 0, resumed: false, session: expect.any(String) });
    await terminal.waitFor(/agent@agentyard/);
    terminal.type('ls /workspace; cat /workspace/agent-file.txt; stty size; id -un\r');
    await terminal.waitFor(/agent-file\.txt/);
    await terminal.waitFor(/^from-agent\r?$/m);
    await terminal.waitFor(/^40 120\r?$/m);
    await terminal.waitFor(/^agent\r?$/m);

    // A resize reaches the shell asynchronously (on Docker through an API call of the engine): ask until it shows.
    terminal.resize(90, 20);
    await expect
      .poll(
        async () => {
          terminal.type('stty size\r');
          await new Promise((resolve) => setTimeout(resolve, 500));
          return /^20 90\r?$/m.test(terminal.output);
        },
        { timeout: 15_000 },
      )
      .toBe(true);

    terminal.type('exit\r');
    expect(await terminal.waitForMessage('exit')).toEqual({ type: 'exit', code: 0, signal: null });
    expect((await terminal.waitClosed()).code).toBe(1000);
  });

  it('interrupts a running command with Ctrl-C', async () => {
    const terminal = await TerminalClient.connect(url(), { authorization: `Bearer ${(alice.auth as { token: string }).token}` });
    await terminal.waitFor(/\$ $/m);
    terminal.type('sleep 60; echo never\r');
    await new Promise((resolve) => setTimeout(resolve, 300));
    terminal.type('\x03');
    terminal.type('echo "back $((40+2))"\r');
    await terminal.waitFor(/back 42/);
    expect(terminal.output).not.toMatch(/^never\r?$/m);
    terminal.close();
  });

  it('reconnects to the same shell and sends only the output the tab missed', async () => {
    const session = `test-${Date.now()}`;
    const first = await TerminalClient.connect(url(`?session=${session}`), { ...aliceCookie.authHeaders, origin });
    await first.waitFor(/\$ $/m);
    first.type('MARK=kept-across-reconnects; sleep 1; echo "missed-$((1+1))"\r');
    await first.waitFor(/sleep 1; echo/);
    // The network drops: the shell keeps running and its output is kept.
    first.socket.terminate();
    await first.waitClosed();
    const offset = first.received;
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const second = await TerminalClient.connect(url(`?session=${session}&offset=${offset}`), { ...aliceCookie.authHeaders, origin });
    expect(await second.waitForMessage('attached')).toMatchObject({ session, start: offset, resumed: true });
    await second.waitFor(/missed-2/);
    expect(second.output).not.toContain('MARK=kept');
    second.type('echo "mark=$MARK"\r');
    await second.waitFor(/mark=kept-across-reconnects/);

    // A tab that has nothing (a reload) gets a reset and the scrollback.
    const third = await TerminalClient.connect(url(`?session=${session}`), { ...aliceCookie.authHeaders, origin });
    expect(await third.waitForMessage('attached')).toMatchObject({ start: 0, resumed: false });
    await third.waitFor(/MARK=kept/);
    expect((await second.waitClosed()).code).toBe(4001);
    third.type('exit\r');
    await third.waitForMessage('exit');
  });

  it('refuses other origins, anonymous callers, other users and plain HTTP', async () => {
    const refused = async (target: string, headers: Record<string, string>): Promise<number> => {
      try {
        const client = await TerminalClient.connect(target, headers);
        client.close();
        return 101;
      } catch (error) {
        return (error as { status: number }).status;
      }
    };
    expect(await refused(url(), { ...aliceCookie.authHeaders, origin: 'http://evil.example' })).toBe(403);
    expect(await refused(url(), { ...aliceCookie.authHeaders })).toBe(403);
    expect(await refused(url(), { origin })).toBe(401);
    expect(await refused(url(), { authorization: `Bearer ${(alice.auth as { token: string }).token}`, origin: 'null' })).toBe(403);

    const bob = await test.api.registerWithToken('bob@example.com');
    expect(await refused(url(), { authorization: `Bearer ${(bob.auth as { token: string }).token}` })).toBe(404);
    expect(await refused(url('?cols=0'), { ...aliceCookie.authHeaders, origin })).toBe(400);
    expect(await refused(url('?session=../../x'), { ...aliceCookie.authHeaders, origin })).toBe(400);

    const plain = await alice.request('GET', `/api/conversations/${conversationId}/terminal`);
    expect(plain.status).toBe(400);
    expect(plain.body.error.message).toMatch(/WebSocket/);
  });

  it('is described in the OpenAPI spec', async () => {
    const spec = (await test.api.request('GET', '/api/openapi.json')).body;
    const route = spec.paths['/api/conversations/{id}/terminal'].get;
    expect(route.description).toMatch(/WebSocket/);
    expect(route.parameters.map((parameter: { name: string }) => parameter.name)).toEqual(expect.arrayContaining(['id', 'session', 'offset', 'cols', 'rows']));
  });
});
