import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { TerminalClient } from '../support/terminal-client.ts';

describe('terminals open at once', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let bob: ApiClient;
  const open: TerminalClient[] = [];

  beforeAll(async () => {
    test = await startTestPlatform({ env: { AGENTYARD_TERMINALS_PER_USER: '3', AGENTYARD_TERMINALS_PER_CONVERSATION: '2' } });
    alice = await test.api.registerWithToken('alice@example.com');
    bob = await test.api.registerWithToken('bob@example.com');
  });
  afterAll(async () => {
    for (const terminal of open) terminal.close();
    await test?.close();
  });

  const conversation = async (client: ApiClient): Promise<string> => (await client.request('POST', '/api/conversations', {})).body.id;

  /** Opens a terminal: the shell when the server lets it in, else the refusal's status and error. */
  async function terminal(client: ApiClient, conversationId: string): Promise<TerminalClient | { status: number; error: any }> {
    const url = `${test.platform.url.replace(/^http/, 'ws')}/api/conversations/${conversationId}/terminal`;
    try {
      const opened = await TerminalClient.connect(url, client.authHeaders);
      open.push(opened);
      await opened.waitFor(/\$ $/m);
      return opened;
    } catch (error) {
      const { status, body } = error as { status: number; body: string };
      return { status, error: JSON.parse(body).error };
    }
  }

  it('are bounded per conversation and per user (429 naming the bound), and a shell that exits frees its place', async () => {
    const [first, second] = [await conversation(alice), await conversation(alice)];
    const a1 = await terminal(alice, first);
    expect(a1).toBeInstanceOf(TerminalClient);
    expect(await terminal(alice, first)).toBeInstanceOf(TerminalClient);
    expect(await terminal(alice, first)).toEqual({
      status: 429,
      error: expect.objectContaining({
        code: 'TOO_MANY_TERMINALS',
        message: expect.stringContaining('AGENTYARD_TERMINALS_PER_CONVERSATION'),
        details: { bound: 'perConversation', limit: 2 },
      }),
    });

    expect(await terminal(alice, second)).toBeInstanceOf(TerminalClient);
    expect(await terminal(alice, second)).toEqual({
      status: 429,
      error: expect.objectContaining({
        code: 'TOO_MANY_TERMINALS',
        message: expect.stringContaining('AGENTYARD_TERMINALS_PER_USER'),
        details: { bound: 'perUser', limit: 3 },
      }),
    });
    // Another user is not held to alice's bound.
    expect(await terminal(bob, await conversation(bob))).toBeInstanceOf(TerminalClient);

    // A shell that exits gives its place back.
    const exiting = a1 as TerminalClient;
    exiting.type('exit\r');
    await exiting.waitForMessage('exit');
    expect(await terminal(alice, second)).toBeInstanceOf(TerminalClient);
    expect(await terminal(alice, first)).toMatchObject({ status: 429 });
  });
});
