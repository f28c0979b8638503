import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { OpenEventStream } from '../support/open-event-stream.ts';
import { TerminalClient } from '../support/terminal-client.ts';

const password = 'correct horse battery';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check` answers true (it may also be called outside a test, unlike expect.poll). */
async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

/**
 * Signing out, revoking a token, changing the password and disabling the account end at once the event streams and
 * terminals opened with the credential (regression: a disabled user's terminal kept running commands and their event
 * stream kept streaming), and nothing else.
 */
describe('revoking a credential', () => {
  let test: TestPlatform;
  let admin: ApiClient;
  let alice: ApiClient;
  let aliceId: string;
  let conversationId: string;
  let bob: ApiClient;
  let bobStream: OpenEventStream;
  let bobTerminal: TerminalClient;
  const streams: OpenEventStream[] = [];
  const terminals: TerminalClient[] = [];
  /** Alice's streams and token that outlive the password change, for the test of disabling her. */
  const tokenStreams: OpenEventStream[] = [];
  const tokenClients: ApiClient[] = [];

  beforeAll(async () => {
    test = await startTestPlatform();
    admin = await test.api.register('root@example.com', password);
    alice = await test.api.register('alice@example.com', password);
    aliceId = (await alice.request('GET', '/api/auth/me')).body.user.id;
    conversationId = (await alice.request('POST', '/api/conversations', {})).body.id;
    bob = await test.api.register('bob@example.com', password);
    const bobConversation = (await bob.request('POST', '/api/conversations', {})).body.id;
    bobStream = await openStream(bob, bobConversation);
    bobTerminal = await openTerminal(bob, bobConversation);
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    for (const terminal of terminals) terminal.close();
    await test?.close();
  });

  async function signIn(email: string, secret = password): Promise<ApiClient> {
    const response = await test.api.request('POST', '/api/auth/login', { email, password: secret });
    expect(response.status).toBe(200);
    return new ApiClient(test.platform.url, { cookie: response.headers.get('set-cookie')!.split(';')[0]! });
  }

  async function createToken(client: ApiClient): Promise<{ id: string; client: ApiClient }> {
    const created = await client.request('POST', '/api/tokens', { name: 'revocation test' });
    expect(created.status).toBe(201);
    return { id: created.body.id, client: client.withToken(created.body.token) };
  }

  /** An event stream the server has started (and so is tracking). */
  async function openStream(client: ApiClient, conversation = conversationId): Promise<OpenEventStream> {
    const stream = await OpenEventStream.open(test.platform.url, conversation, client.authHeaders);
    streams.push(stream);
    return stream;
  }

  async function openTerminal(client: ApiClient, conversation = conversationId): Promise<TerminalClient> {
    const headers = 'cookie' in client.auth! ? { ...client.authHeaders, origin: test.platform.url } : client.authHeaders;
    const terminal = await TerminalClient.connect(`${test.platform.url.replace(/^http/, 'ws')}/api/conversations/${conversation}/terminal`, headers);
    terminals.push(terminal);
    await terminal.waitFor(/\$ $/m);
    return terminal;
  }

  /** Starts a background loop in the terminal's shell that rewrites a file in the workspace five times a second. */
  async function startHeartbeat(terminal: TerminalClient, name: string): Promise<string> {
    terminal.type(`(while :; do date +%s%N > /workspace/${name}; sleep 0.2; done) >/dev/null 2>&1 &\r`);
    const file = path.join(test.workspaceDir(conversationId), name);
    await waitUntil(`${name} is written`, async () => (await readFile(file, 'utf8').catch(() => '')) !== '');
    return file;
  }

  /**
   * The loop the shell started dies: its file stops changing (for a whole second, five of its beats). The shell's
   * jobs get SIGHUP at once and SIGKILL after a grace period, hence the generous bound.
   */
  async function expectStopped(file: string): Promise<void> {
    let last = await readFile(file, 'utf8');
    await waitUntil(`${path.basename(file)} stops changing`, async () => {
      await sleep(1000);
      const now = await readFile(file, 'utf8');
      const still = now === last;
      last = now;
      return still;
    });
  }

  /** The stream ended (well before its 15 s heartbeat) with a last `error` event UNAUTHORIZED. */
  async function expectEnded(stream: OpenEventStream): Promise<void> {
    await waitUntil('the server ends the event stream', () => stream.ended, 10_000);
    expect(stream.lastEvent()).toEqual({ event: 'error', data: { code: 'UNAUTHORIZED', message: expect.stringMatching(/sign in again/) } });
  }

  async function expectOpen(stream: OpenEventStream): Promise<void> {
    await sleep(300);
    expect(stream.ended).toBe(false);
  }

  async function expectRevokedTerminal(terminal: TerminalClient): Promise<void> {
    expect((await terminal.waitClosed(10_000)).code).toBe(4401);
    expect(terminal.messages.at(-1)).toMatchObject({ type: 'error', code: 'UNAUTHORIZED' });
  }

  it('signing out ends the streams and terminals of that browser session, not of another one', async () => {
    const laptop = await signIn('alice@example.com');
    const phone = await signIn('alice@example.com');
    const stream = await openStream(laptop);
    const terminal = await openTerminal(laptop);
    const heartbeat = await startHeartbeat(terminal, 'logout-beat');
    const phoneStream = await openStream(phone);

    expect((await laptop.request('POST', '/api/auth/logout')).status).toBe(204);
    await expectEnded(stream);
    await expectRevokedTerminal(terminal);
    await expectStopped(heartbeat);
    await expectOpen(phoneStream);
    phoneStream.close();
  });

  it('revoking an API token ends its streams and terminals', async () => {
    const token = await createToken(alice);
    const stream = await openStream(token.client);
    const terminal = await openTerminal(token.client);
    const heartbeat = await startHeartbeat(terminal, 'token-beat');
    const cookieStream = await openStream(alice);

    expect((await alice.request('DELETE', `/api/tokens/${token.id}`)).status).toBe(204);
    await expectEnded(stream);
    await expectRevokedTerminal(terminal);
    await expectStopped(heartbeat);
    await expectOpen(cookieStream);
    cookieStream.close();
  });

  it("changing the password ends every browser session's streams and terminals, keeps API tokens and signs the caller in again", async () => {
    const laptop = await signIn('alice@example.com');
    const phone = await signIn('alice@example.com');
    const token = await createToken(laptop);
    const laptopStream = await openStream(laptop);
    const phoneTerminal = await openTerminal(phone);
    const heartbeat = await startHeartbeat(phoneTerminal, 'password-beat');
    const tokenStream = await openStream(token.client);

    const wrong = await laptop.request('POST', '/api/auth/password', { currentPassword: 'not my password', newPassword: 'a brand new password' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error).toMatchObject({ code: 'FORBIDDEN', message: 'the current password is wrong' });
    await expectOpen(laptopStream);

    const changed = await laptop.request('POST', '/api/auth/password', { currentPassword: password, newPassword: 'a brand new password' });
    expect(changed.status).toBe(204);
    await expectEnded(laptopStream);
    await expectRevokedTerminal(phoneTerminal);
    await expectStopped(heartbeat);
    await expectOpen(tokenStream);

    const reissued = new ApiClient(test.platform.url, { cookie: changed.headers.get('set-cookie')!.split(';')[0]! });
    expect((await reissued.request('GET', '/api/auth/me')).status).toBe(200);
    for (const signedOut of [laptop, phone, alice]) expect((await signedOut.request('GET', '/api/auth/me')).status).toBe(401);
    expect((await token.client.request('GET', '/api/auth/me')).status).toBe(200);
    expect((await test.api.request('POST', '/api/auth/login', { email: 'alice@example.com', password })).status).toBe(401);
    alice = await signIn('alice@example.com', 'a brand new password');
    // Kept open for the next test: disabling the account ends it.
    tokenStreams.push(tokenStream, await openStream(alice));
    tokenClients.push(token.client);
  });

  it('disabling the user ends everything they opened, with any credential', async () => {
    const [tokenClient] = tokenClients;
    const terminal = await openTerminal(tokenClient!);
    const heartbeat = await startHeartbeat(terminal, 'disable-beat');

    expect((await admin.request('PATCH', `/api/admin/users/${aliceId}`, { disabled: true })).status).toBe(200);
    for (const stream of tokenStreams) await expectEnded(stream);
    await expectRevokedTerminal(terminal);
    await expectStopped(heartbeat);
    expect((await tokenClient!.request('GET', '/api/auth/me')).status).toBe(401);
  });

  it("leaves another user's stream and terminal alone through all of it", async () => {
    await expectOpen(bobStream);
    expect(bobTerminal.closed).toBeNull();
    bobTerminal.type('echo "still here $((20+1))"\r');
    await bobTerminal.waitFor(/still here 21/);
  });
});
