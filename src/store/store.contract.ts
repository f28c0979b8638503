import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.ts';
import type { EventData } from '../core/events.ts';
import { newId } from '../core/ids.ts';
import type { NewGatewayGrant, Store } from '../core/store.ts';
import type { Agent, EgressRecord, TokenUsage, UsageRecord, User } from '../core/types.ts';

export interface StoreContractOptions {
  /**
   * Opens another store on the test's database, as a second replica would (not emptied, not closed by the suite).
   * Without it, the suite's store plays every replica: SQLite runs one.
   */
  openPeer?: () => Promise<Store>;
}

/**
 * The behaviour every Store implementation must show. `makeStore` returns a store on an empty
 * database (migrated or not); the suite migrates it and closes it after each test.
 */
export function describeStoreContract(name: string, makeStore: () => Promise<Store>, options: StoreContractOptions = {}): void {
  describe(`${name} store contract`, () => {
    let store: Store;

    beforeEach(async () => {
      store = await makeStore();
      await store.migrate();
    });

    afterEach(async () => {
      await store.close();
    });

    const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    const past = '2000-01-01T00:00:00.000Z';
    const future = '2999-01-01T00:00:00.000Z';
    const now = '2025-06-01T12:00:00.000Z';
    const later = '2025-06-01T13:00:00.000Z';

    const createUser = (email = `${newId('u')}@example.com`, role: 'admin' | 'user' = 'user'): Promise<User> =>
      store.createUser({ id: newId('usr'), email, passwordHash: 'hash-of-password', role });

    const agentFixture = (overrides: Partial<Agent> = {}): Agent => ({
      id: newId('agt'),
      ownerId: null,
      name: 'Coder',
      description: 'Writes code',
      instructions: 'Be brief.',
      model: 'claude-sonnet-4-5-20250929',
      allowedTools: ['Read', 'Bash(git:*)'],
      disallowedTools: ['WebFetch'],
      maxTurns: null,
      limits: { memoryMb: 2048, cpus: 1.5, turnTimeoutSeconds: 600 },
      egressDomains: ['packages.example.com', '*.git.example.com:443'],
      sandboxRuntime: 'runsc',
      createdAt: now,
      updatedAt: now,
      ...overrides,
    });

    /** A user with an agent and a conversation, the fixture most tests start from. */
    const createConversationFixture = async (user?: User) => {
      const owner = user ?? (await createUser());
      const agent = await store.createAgent(agentFixture({ ownerId: owner.id }));
      const conversation = await store.createConversation({
        id: newId('conv'),
        userId: owner.id,
        agentId: agent.id,
        title: 'First chat',
      });
      return { user: owner, agent, conversation };
    };

    const delta = (turnId: string, text: string): EventData => ({
      type: 'message.delta',
      turnId,
      messageId: 'msg_1',
      text,
    });

    const usage = (inputTokens: number): TokenUsage => ({
      inputTokens,
      outputTokens: 20,
      cacheCreationInputTokens: 3,
      cacheReadInputTokens: 4,
    });

    const expectAppError = async (promise: Promise<unknown>, code: AppError['code']): Promise<AppError> => {
      const error: unknown = await promise.then(
        () => expect.fail(`expected AppError ${code}`),
        (rejection: unknown) => rejection,
      );
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe(code);
      return error as AppError;
    };

    describe('migrations', () => {
      it('can run again on a migrated database and answers pings', async () => {
        await store.migrate();
        await expect(store.ping()).resolves.toBeUndefined();
        expect(await store.countUsers()).toBe(0);
      });
    });

    describe('users', () => {
      it('creates a user and reads it back by id', async () => {
        const created = await store.createUser({
          id: 'usr_1',
          email: 'Ada@Example.com',
          passwordHash: 'scrypt$abc',
          role: 'admin',
        });
        expect(created).toEqual({
          id: 'usr_1',
          email: 'Ada@Example.com',
          role: 'admin',
          disabled: false,
          createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        });
        expect(await store.getUser('usr_1')).toEqual(created);
        expect(await store.getUser('usr_missing')).toBeNull();
      });

      it('rejects a second user whose email differs only in case as CONFLICT', async () => {
        await createUser('grace@example.com');
        const error = await expectAppError(createUser('GRACE@example.COM'), 'CONFLICT');
        expect(error.message).not.toMatch(/grace/i);
        expect(await store.countUsers()).toBe(1);
      });

      it('finds a user by email case-insensitively, with the password hash', async () => {
        const user = await createUser('Linus@Example.com');
        const found = await store.getUserByEmail('linus@EXAMPLE.com');
        expect(found).toEqual({ ...user, passwordHash: 'hash-of-password' });
        expect(await store.getUserByEmail('nobody@example.com')).toBeNull();
      });

      it('counts users and lists them in creation order', async () => {
        const first = await createUser();
        await sleep(3);
        const second = await createUser();
        expect(await store.countUsers()).toBe(2);
        expect((await store.listUsers()).map((user) => user.id)).toEqual([first.id, second.id]);
      });

      it('updates role, disabled flag and password hash', async () => {
        const user = await createUser('ken@example.com');
        const updated = await store.updateUser(user.id, { role: 'admin', disabled: true, passwordHash: 'new-hash' });
        expect(updated).toEqual({ ...user, role: 'admin', disabled: true });
        expect(await store.getUser(user.id)).toEqual(updated);
        expect((await store.getUserByEmail('ken@example.com'))?.passwordHash).toBe('new-hash');

        const reenabled = await store.updateUser(user.id, { disabled: false });
        expect(reenabled).toEqual({ ...user, role: 'admin', disabled: false });
        expect(await store.updateUser('usr_missing', { role: 'admin' })).toBeNull();
      });

      it('makes exactly one of 20 concurrent first registrations the admin (regression: all of them became admin)', async () => {
        const attempts = Array.from({ length: 20 }, (_, index) =>
          store.createFirstAdmin({ id: newId('usr'), email: `first-${index}@example.com`, passwordHash: 'hash-of-password' }),
        );
        const results = await Promise.all(attempts);
        const winners = results.filter((user) => user !== null);
        expect(winners).toHaveLength(1);
        expect(winners[0]).toMatchObject({ role: 'admin' });
        // The losers created nothing: the caller decides what they become under the registration policy.
        expect((await store.listUsers()).map((user) => [user.id, user.role])).toEqual([[winners[0]!.id, 'admin']]);
      });

      it('gives the first-admin place only once, also after the admin was demoted', async () => {
        const admin = await store.createFirstAdmin({ id: newId('usr'), email: 'root@example.com', passwordHash: 'h' });
        expect(admin).toMatchObject({ email: 'root@example.com', role: 'admin' });
        await store.updateUser(admin!.id, { role: 'user' });
        expect(await store.createFirstAdmin({ id: newId('usr'), email: 'late@example.com', passwordHash: 'h' })).toBeNull();
        expect(await store.getUserByEmail('late@example.com')).toBeNull();
      });
    });

    describe('sessions', () => {
      it('returns a session until it expires', async () => {
        const user = await createUser();
        await store.createSession({ idHash: 'session-hash', userId: user.id, expiresAt: later });
        expect(await store.getSession('session-hash', now)).toEqual({
          id: 'session-hash',
          userId: user.id,
          createdAt: expect.any(String),
          expiresAt: later,
        });
        expect(await store.getSession('session-hash', later)).toBeNull();
        expect(await store.getSession('other-hash', now)).toBeNull();
      });

      it('deletes a session', async () => {
        const user = await createUser();
        await store.createSession({ idHash: 'session-hash', userId: user.id, expiresAt: future });
        await store.deleteSession('session-hash');
        expect(await store.getSession('session-hash', now)).toBeNull();
      });

      it("deletes every session of one user and no one else's", async () => {
        const user = await createUser();
        const other = await createUser();
        await store.createSession({ idHash: 'laptop', userId: user.id, expiresAt: future });
        await store.createSession({ idHash: 'phone', userId: user.id, expiresAt: future });
        await store.createSession({ idHash: 'other', userId: other.id, expiresAt: future });
        await store.deleteUserSessions(user.id);
        expect(await store.getSession('laptop', now)).toBeNull();
        expect(await store.getSession('phone', now)).toBeNull();
        expect(await store.getSession('other', now)).toMatchObject({ userId: other.id });
      });
    });

    describe('api tokens', () => {
      const createToken = (userId: string, overrides: { tokenHash?: string; expiresAt?: string | null } = {}) =>
        store.createApiToken({
          id: newId('tok'),
          userId,
          name: 'laptop',
          tokenHash: overrides.tokenHash ?? newId('hash'),
          prefix: 'ay_abcd',
          expiresAt: overrides.expiresAt ?? null,
        });

      it('finds a live token by its hash', async () => {
        const user = await createUser();
        const token = await createToken(user.id, { tokenHash: 'token-hash', expiresAt: later });
        expect(token).toEqual({
          id: token.id,
          userId: user.id,
          name: 'laptop',
          prefix: 'ay_abcd',
          createdAt: expect.any(String),
          lastUsedAt: null,
          expiresAt: later,
          revokedAt: null,
        });
        expect(await store.findLiveApiToken('token-hash', now)).toEqual(token);
        expect(await store.findLiveApiToken('other-hash', now)).toBeNull();
      });

      it('does not find revoked or expired tokens', async () => {
        const user = await createUser();
        const revoked = await createToken(user.id, { tokenHash: 'revoked-hash' });
        await createToken(user.id, { tokenHash: 'expired-hash', expiresAt: now });
        expect(await store.revokeApiToken(user.id, revoked.id, now)).toBe(true);
        expect(await store.findLiveApiToken('revoked-hash', later)).toBeNull();
        expect(await store.findLiveApiToken('expired-hash', now)).toBeNull();
        expect(await store.findLiveApiToken('expired-hash', past)).not.toBeNull();
      });

      it("lists only the user's own tokens, revoked ones included", async () => {
        const user = await createUser();
        const other = await createUser();
        const first = await createToken(user.id);
        await sleep(3);
        const second = await createToken(user.id);
        await createToken(other.id);
        await store.revokeApiToken(user.id, first.id, now);
        const listed = await store.listApiTokens(user.id);
        expect(listed.map((token) => token.id)).toEqual([first.id, second.id]);
        expect(listed[0]?.revokedAt).toBe(now);
      });

      it("revokes only the owner's live token", async () => {
        const owner = await createUser();
        const intruder = await createUser();
        const token = await createToken(owner.id, { tokenHash: 'token-hash' });
        expect(await store.revokeApiToken(intruder.id, token.id, now)).toBe(false);
        expect(await store.findLiveApiToken('token-hash', now)).not.toBeNull();
        expect(await store.revokeApiToken(owner.id, token.id, now)).toBe(true);
        expect(await store.revokeApiToken(owner.id, token.id, later)).toBe(false);
        expect(await store.revokeApiToken(owner.id, 'tok_missing', now)).toBe(false);
      });

      it('records when a token was last used', async () => {
        const user = await createUser();
        const token = await createToken(user.id, { tokenHash: 'token-hash' });
        await store.touchApiToken(token.id, later);
        expect((await store.findLiveApiToken('token-hash', now))?.lastUsedAt).toBe(later);
      });

      it('rejects a duplicate token hash as CONFLICT', async () => {
        const user = await createUser();
        await createToken(user.id, { tokenHash: 'token-hash' });
        await expectAppError(createToken(user.id, { tokenHash: 'token-hash' }), 'CONFLICT');
      });
    });

    describe('invites', () => {
      const createInvite = (createdBy: string, codeHash: string, expiresAt = later) =>
        store.createInvite({ id: newId('inv'), codeHash, email: 'new@example.com', createdBy, expiresAt });

      it('consumes an invite once', async () => {
        const admin = await createUser(undefined, 'admin');
        const invite = await createInvite(admin.id, 'code-hash');
        expect(invite).toEqual({
          id: invite.id,
          email: 'new@example.com',
          createdBy: admin.id,
          createdAt: expect.any(String),
          expiresAt: later,
          usedAt: null,
        });
        expect(await store.consumeInvite('code-hash', 'new@example.com', now)).toEqual({ ...invite, usedAt: now });
        expect(await store.consumeInvite('code-hash', 'new@example.com', now)).toBeNull();
        expect(await store.consumeInvite('unknown-hash', 'new@example.com', now)).toBeNull();
      });

      it('consumes an invite issued for an email only for that email, and an open invite for any', async () => {
        const admin = await createUser(undefined, 'admin');
        await createInvite(admin.id, 'code-hash');
        expect(await store.consumeInvite('code-hash', 'eve@example.com', now)).toBeNull();
        expect(await store.consumeInvite('code-hash', 'new@example.com', now)).not.toBeNull();
        await store.createInvite({ id: newId('inv'), codeHash: 'open-hash', email: null, createdBy: admin.id, expiresAt: later });
        expect(await store.consumeInvite('open-hash', 'anyone@example.com', now)).toMatchObject({ email: null, usedAt: now });
      });

      it('does not consume an expired invite', async () => {
        const admin = await createUser(undefined, 'admin');
        await createInvite(admin.id, 'code-hash', now);
        expect(await store.consumeInvite('code-hash', 'new@example.com', now)).toBeNull();
        expect(await store.consumeInvite('code-hash', 'new@example.com', later)).toBeNull();
      });

      it('lets exactly one of many concurrent sign-ups consume an invite', async () => {
        const admin = await createUser(undefined, 'admin');
        await createInvite(admin.id, 'code-hash');
        const results = await Promise.all(Array.from({ length: 10 }, () => store.consumeInvite('code-hash', 'new@example.com', now)));
        expect(results.filter((result) => result !== null)).toHaveLength(1);
      });
    });

    describe('agents', () => {
      it('creates an agent and reads back every field', async () => {
        const user = await createUser();
        const agent = agentFixture({ ownerId: user.id, maxTurns: 12 });
        expect(await store.createAgent(agent)).toEqual(agent);
        expect(await store.getAgent(agent.id)).toEqual(agent);
        expect(await store.getAgent('agt_missing')).toBeNull();
        await expectAppError(store.createAgent(agent), 'CONFLICT');
      });

      it('updates only the patched fields and the update time', async () => {
        const user = await createUser();
        const agent = await store.createAgent(agentFixture({ ownerId: user.id }));
        const updated = await store.updateAgent(
          agent.id,
          {
            name: 'Reviewer',
            allowedTools: [],
            maxTurns: 3,
            limits: { memoryMb: 512, cpus: 0.5, turnTimeoutSeconds: 60 },
            egressDomains: [],
            sandboxRuntime: 'default',
          },
          later,
        );
        const expected: Agent = {
          ...agent,
          name: 'Reviewer',
          allowedTools: [],
          maxTurns: 3,
          limits: { memoryMb: 512, cpus: 0.5, turnTimeoutSeconds: 60 },
          egressDomains: [],
          sandboxRuntime: 'default',
          updatedAt: later,
        };
        expect(updated).toEqual(expected);
        expect(await store.getAgent(agent.id)).toEqual(expected);
        expect(await store.updateAgent('agt_missing', { name: 'x' }, later)).toBeNull();
      });

      it('deletes an agent', async () => {
        const user = await createUser();
        const agent = await store.createAgent(agentFixture({ ownerId: user.id }));
        expect(await store.deleteAgent(agent.id)).toBe(true);
        expect(await store.getAgent(agent.id)).toBeNull();
        expect(await store.deleteAgent(agent.id)).toBe(false);
      });

      it('inserts a built-in agent, then replaces it keeping its creation time', async () => {
        const builtIn = agentFixture({ id: 'builtin-coder' });
        expect(await store.upsertAgent(builtIn)).toEqual(builtIn);
        const replacement = agentFixture({
          id: 'builtin-coder',
          name: 'Coder v2',
          disallowedTools: [],
          createdAt: later,
          updatedAt: later,
        });
        expect(await store.upsertAgent(replacement)).toEqual({ ...replacement, createdAt: now });
        expect(await store.getAgent('builtin-coder')).toEqual({ ...replacement, createdAt: now });
      });

      it("refuses to replace a user's agent through the built-in upsert", async () => {
        const user = await createUser();
        const agent = await store.createAgent(agentFixture({ ownerId: user.id }));
        await expectAppError(store.upsertAgent({ ...agent, ownerId: null, name: 'Hijacked' }), 'CONFLICT');
        expect((await store.getAgent(agent.id))?.name).toBe('Coder');
      });

      it("lists the user's own agents first, then the built-in ones, never other users'", async () => {
        const user = await createUser();
        const other = await createUser();
        const builtIn = await store.upsertAgent(agentFixture({ id: 'builtin-a', createdAt: past }));
        const own = await store.createAgent(agentFixture({ ownerId: user.id, createdAt: later }));
        await store.createAgent(agentFixture({ ownerId: other.id }));
        expect((await store.listAgents(user.id)).map((agent) => agent.id)).toEqual([own.id, builtIn.id]);
      });

      it('counts conversations using an agent and refuses to delete it while used', async () => {
        const { agent } = await createConversationFixture();
        expect(await store.countConversationsUsingAgent(agent.id)).toBe(1);
        expect(await store.countConversationsUsingAgent('agt_unused')).toBe(0);
        await expectAppError(store.deleteAgent(agent.id), 'CONFLICT');
        expect(await store.getAgent(agent.id)).not.toBeNull();
      });
    });

    describe('conversations', () => {
      it('creates a conversation and reads it back', async () => {
        const { user, agent, conversation } = await createConversationFixture();
        expect(conversation).toEqual({
          id: conversation.id,
          userId: user.id,
          agentId: agent.id,
          title: 'First chat',
          claudeSessionId: null,
          claudeResumeAt: null,
          lastSeq: 0,
          createdAt: expect.any(String),
          updatedAt: conversation.createdAt,
        });
        expect(await store.getConversation(conversation.id)).toEqual(conversation);
        expect(await store.getConversation('conv_missing')).toBeNull();
      });

      it('rejects a conversation with a missing agent as CONFLICT', async () => {
        const user = await createUser();
        await expectAppError(
          store.createConversation({ id: newId('conv'), userId: user.id, agentId: 'agt_missing', title: 't' }),
          'CONFLICT',
        );
      });

      it('updates the title and Claude session id, bumping the update time', async () => {
        const { conversation } = await createConversationFixture();
        await sleep(3);
        const renamed = await store.updateConversation(conversation.id, { title: 'Renamed' });
        expect(renamed?.title).toBe('Renamed');
        expect(renamed !== null && renamed.updatedAt > conversation.updatedAt).toBe(true);
        const withSession = await store.updateConversation(conversation.id, { claudeSessionId: 'session-uuid' });
        expect(withSession).toMatchObject({ title: 'Renamed', claudeSessionId: 'session-uuid' });
        const cleared = await store.updateConversation(conversation.id, { claudeSessionId: null });
        expect(cleared?.claudeSessionId).toBeNull();
        const resumeAt = await store.updateConversation(conversation.id, { claudeSessionId: 'session-2', claudeResumeAt: 'message-uuid' });
        expect(resumeAt).toMatchObject({ title: 'Renamed', claudeSessionId: 'session-2', claudeResumeAt: 'message-uuid' });
        expect(await store.getConversation(conversation.id)).toMatchObject({ claudeResumeAt: 'message-uuid' });
        expect((await store.updateConversation(conversation.id, { claudeResumeAt: null }))?.claudeResumeAt).toBeNull();
        expect(await store.updateConversation('conv_missing', { title: 'x' })).toBeNull();
      });

      it("lists only the user's conversations, most recently updated first", async () => {
        const { user, agent, conversation: older } = await createConversationFixture();
        await sleep(3);
        const newer = await store.createConversation({ id: newId('conv'), userId: user.id, agentId: agent.id, title: 'b' });
        await createConversationFixture();
        expect((await store.listConversations(user.id)).map((item) => item.id)).toEqual([newer.id, older.id]);

        await sleep(3);
        await store.appendEvent(older.id, delta('turn_1', 'hi'));
        expect((await store.listConversations(user.id)).map((item) => item.id)).toEqual([older.id, newer.id]);
      });

      it('deletes a conversation with its turns and events', async () => {
        const { conversation } = await createConversationFixture();
        const turn = await store.createTurn({ id: newId('turn'), conversationId: conversation.id, input: 'hi' });
        await store.appendEvent(conversation.id, { type: 'turn.queued', turnId: turn.id, text: 'hi' });
        expect(await store.deleteConversation(conversation.id)).toBe(true);
        expect(await store.getConversation(conversation.id)).toBeNull();
        expect(await store.getTurn(turn.id)).toBeNull();
        expect(await store.listTurns(conversation.id)).toEqual([]);
        expect(await store.listEvents(conversation.id)).toEqual([]);
        expect(await store.deleteConversation(conversation.id)).toBe(false);
      });
    });

    describe('turns', () => {
      it('creates queued turns and lists them in creation order', async () => {
        const { conversation } = await createConversationFixture();
        const ids = ['turn_c', 'turn_a', 'turn_b'];
        for (const id of ids) await store.createTurn({ id, conversationId: conversation.id, input: `input ${id}` });
        const turns = await store.listTurns(conversation.id);
        expect(turns.map((turn) => turn.id)).toEqual(ids);
        expect(turns[0]).toEqual({
          id: 'turn_c',
          conversationId: conversation.id,
          status: 'queued',
          input: 'input turn_c',
          createdAt: expect.any(String),
          startedAt: null,
          endedAt: null,
          usage: null,
          costUsd: null,
          error: null,
        });
        expect(await store.getTurn('turn_a')).toEqual(turns[1]);
        expect(await store.getTurn('turn_missing')).toBeNull();
      });

      it('rejects a turn for a missing conversation as NOT_FOUND', async () => {
        await expectAppError(store.createTurn({ id: 'turn_1', conversationId: 'conv_missing', input: 'x' }), 'NOT_FOUND');
      });

      it('updates status, times, usage, cost and error', async () => {
        const { conversation } = await createConversationFixture();
        const turn = await store.createTurn({ id: 'turn_1', conversationId: conversation.id, input: 'hi' });
        const running = await store.updateTurn(turn.id, { status: 'running', startedAt: now });
        expect(running).toEqual({ ...turn, status: 'running', startedAt: now });
        const ended = await store.updateTurn(turn.id, {
          status: 'failed',
          endedAt: later,
          usage: usage(100),
          costUsd: 0.0123,
          error: 'model overloaded',
        });
        expect(ended).toEqual({
          ...turn,
          status: 'failed',
          startedAt: now,
          endedAt: later,
          usage: usage(100),
          costUsd: 0.0123,
          error: 'model overloaded',
        });
        expect(await store.getTurn(turn.id)).toEqual(ended);
        expect(await store.updateTurn('turn_missing', { status: 'running' })).toBeNull();
      });

      it('lists turns in the given states across conversations', async () => {
        const first = await createConversationFixture();
        const second = await createConversationFixture();
        await store.createTurn({ id: 'turn_queued', conversationId: first.conversation.id, input: 'a' });
        await store.createTurn({ id: 'turn_running', conversationId: second.conversation.id, input: 'b' });
        await store.createTurn({ id: 'turn_done', conversationId: second.conversation.id, input: 'c' });
        await store.updateTurn('turn_running', { status: 'running' });
        await store.updateTurn('turn_done', { status: 'completed' });
        const found = await store.listTurnsByStatus(['queued', 'running']);
        expect(found.map((turn) => turn.id).sort()).toEqual(['turn_queued', 'turn_running']);
        expect(await store.listTurnsByStatus([])).toEqual([]);
      });
    });

    describe('events', () => {
      it('numbers events from 1 and keeps their data', async () => {
        const { conversation } = await createConversationFixture();
        const events: EventData[] = [
          { type: 'turn.started', turnId: 'turn_1', text: 'hi' },
          { type: 'tool.started', turnId: 'turn_1', toolUseId: 'tu_1', name: 'Bash', input: { command: 'ls' } },
          {
            type: 'turn.ended',
            turnId: 'turn_1',
            status: 'completed',
            usage: usage(5),
            costUsd: 0.5,
            durationMs: 1200,
          },
          { type: 'error', turnId: null, code: 'INTERNAL', message: 'boom' },
        ];
        const appended = [];
        for (const data of events) appended.push(await store.appendEvent(conversation.id, data));
        expect(appended.map((event) => event.seq)).toEqual([1, 2, 3, 4]);
        expect(appended[0]).toEqual({
          conversationId: conversation.id,
          seq: 1,
          createdAt: expect.any(String),
          data: events[0],
        });
        expect(await store.listEvents(conversation.id)).toEqual(appended);
        expect((await store.getConversation(conversation.id))?.lastSeq).toBe(4);
      });

      it('pages with afterSeq and limit', async () => {
        const { conversation } = await createConversationFixture();
        for (let index = 1; index <= 5; index += 1) await store.appendEvent(conversation.id, delta('t', `${index}`));
        const seqs = async (options: { afterSeq?: number; limit?: number }) =>
          (await store.listEvents(conversation.id, options)).map((event) => event.seq);
        expect(await seqs({ afterSeq: 2 })).toEqual([3, 4, 5]);
        expect(await seqs({ limit: 2 })).toEqual([1, 2]);
        expect(await seqs({ afterSeq: 2, limit: 2 })).toEqual([3, 4]);
        expect(await seqs({ afterSeq: 5 })).toEqual([]);
      });

      it('numbers each conversation separately', async () => {
        const first = await createConversationFixture();
        const second = await createConversationFixture();
        await store.appendEvent(first.conversation.id, delta('t', 'a'));
        await store.appendEvent(first.conversation.id, delta('t', 'b'));
        expect((await store.appendEvent(second.conversation.id, delta('t', 'c'))).seq).toBe(1);
      });

      it('gives 50 concurrent appends gap-free unique sequence numbers', async () => {
        const { conversation } = await createConversationFixture();
        const appended = await Promise.all(
          Array.from({ length: 50 }, (_, index) => store.appendEvent(conversation.id, delta('t', `${index}`))),
        );
        expect(appended.map((event) => event.seq).sort((a, b) => a - b)).toEqual(
          Array.from({ length: 50 }, (_, index) => index + 1),
        );
        const listed = await store.listEvents(conversation.id);
        expect(listed.map((event) => event.seq)).toEqual(Array.from({ length: 50 }, (_, index) => index + 1));
        expect(new Set(listed.map((event) => (event.data as { text: string }).text)).size).toBe(50);
        expect((await store.getConversation(conversation.id))?.lastSeq).toBe(50);
      });

      it('rejects an event for a missing conversation as NOT_FOUND', async () => {
        await expectAppError(store.appendEvent('conv_missing', delta('t', 'x')), 'NOT_FOUND');
      });
    });

    describe('usage', () => {
      it('records usage and filters it by user, conversation and turn', async () => {
        const { user, conversation } = await createConversationFixture();
        const other = await createConversationFixture();
        const record = (id: string, userId: string, conversationId: string, turnId: string | null) => ({
          id,
          userId,
          conversationId,
          turnId,
          agentId: 'agt_1',
          model: 'claude-sonnet-4-5-20250929',
          usage: usage(10),
          createdAt: now,
        });
        const first = record('use_1', user.id, conversation.id, 'turn_1');
        const second = record('use_2', user.id, conversation.id, null);
        const foreign = record('use_3', other.user.id, other.conversation.id, 'turn_9');
        for (const item of [first, second, foreign]) await store.recordUsage(item);

        expect(await store.listUsage({ userId: user.id })).toEqual([first, second]);
        expect(await store.listUsage({ conversationId: other.conversation.id })).toEqual([foreign]);
        expect(await store.listUsage({ turnId: 'turn_1' })).toEqual([first]);
        expect(await store.listUsage({ userId: user.id, turnId: 'turn_9' })).toEqual([]);
        expect(await store.listUsage({})).toHaveLength(3);
      });

      it('keeps usage after its conversation is deleted', async () => {
        const { user, conversation } = await createConversationFixture();
        await store.recordUsage({
          id: 'use_1',
          userId: user.id,
          conversationId: conversation.id,
          turnId: null,
          agentId: null,
          model: 'm',
          usage: usage(1),
          createdAt: now,
        });
        await store.deleteConversation(conversation.id);
        expect(await store.listUsage({ userId: user.id })).toHaveLength(1);
      });
    });

    describe('usage aggregation', () => {
      const record = (overrides: Partial<UsageRecord> & { userId: string }): UsageRecord => ({
        id: newId('use'),
        conversationId: 'conv_x',
        turnId: null,
        agentId: 'agt_a',
        model: 'claude-a',
        usage: { inputTokens: 100, outputTokens: 10, cacheCreationInputTokens: 5, cacheReadInputTokens: 1 },
        createdAt: '2025-06-01T10:00:00.000Z',
        ...overrides,
      });

      it('sums tokens by kind per user, UTC day, agent and model, in that order', async () => {
        const alice = await createUser();
        const bob = await createUser();
        await store.recordUsage(record({ userId: alice.id }));
        await store.recordUsage(record({ userId: alice.id, createdAt: '2025-06-01T23:59:59.999Z', usage: { inputTokens: 1, outputTokens: 2, cacheCreationInputTokens: 3, cacheReadInputTokens: 4 } }));
        await store.recordUsage(record({ userId: alice.id, createdAt: '2025-06-02T00:00:00.000Z' }));
        await store.recordUsage(record({ userId: alice.id, agentId: null, model: 'claude-b' }));
        await store.recordUsage(record({ userId: bob.id }));

        const byDayAndAgent = await store.aggregateUsage({ userId: alice.id, groupBy: ['day', 'agent'] });
        expect(byDayAndAgent).toEqual([
          { day: '2025-06-01', agentId: null, requests: 1, usage: { inputTokens: 100, outputTokens: 10, cacheCreationInputTokens: 5, cacheReadInputTokens: 1 } },
          { day: '2025-06-01', agentId: 'agt_a', requests: 2, usage: { inputTokens: 101, outputTokens: 12, cacheCreationInputTokens: 8, cacheReadInputTokens: 5 } },
          { day: '2025-06-02', agentId: 'agt_a', requests: 1, usage: { inputTokens: 100, outputTokens: 10, cacheCreationInputTokens: 5, cacheReadInputTokens: 1 } },
        ]);

        const byUser = await store.aggregateUsage({ groupBy: ['user'] });
        expect(byUser.map((row) => [row.userId, row.requests])).toEqual(
          [[alice.id, 4], [bob.id, 1]].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)),
        );
        const byModel = await store.aggregateUsage({ userId: alice.id, groupBy: ['model'] });
        expect(byModel.map((row) => [row.model, row.requests])).toEqual([['claude-a', 3], ['claude-b', 1]]);
      });

      it('limits the records to [from, to) and answers totals without grouping', async () => {
        const alice = await createUser();
        await store.recordUsage(record({ userId: alice.id, createdAt: '2025-05-31T23:59:59.999Z' }));
        await store.recordUsage(record({ userId: alice.id, createdAt: '2025-06-01T00:00:00.000Z' }));
        await store.recordUsage(record({ userId: alice.id, createdAt: '2025-06-30T23:59:59.999Z' }));
        await store.recordUsage(record({ userId: alice.id, createdAt: '2025-07-01T00:00:00.000Z' }));
        const june = await store.aggregateUsage({ userId: alice.id, from: '2025-06-01T00:00:00.000Z', to: '2025-07-01T00:00:00.000Z', groupBy: [] });
        expect(june).toEqual([{ requests: 2, usage: { inputTokens: 200, outputTokens: 20, cacheCreationInputTokens: 10, cacheReadInputTokens: 2 } }]);
        expect(await store.aggregateUsage({ userId: 'usr_nobody', groupBy: [] })).toEqual([]);
      });
    });

    describe('quota overrides', () => {
      it('stores, replaces, lists and deletes a user override', async () => {
        const user = await createUser();
        expect(await store.getQuotaOverride(user.id)).toBeNull();
        const first = await store.putQuotaOverride({ userId: user.id, limits: { tokensPerDay: 1000, costPerMonthUsd: null }, updatedAt: now });
        expect(first).toEqual({ userId: user.id, limits: { tokensPerDay: 1000, costPerMonthUsd: null }, updatedAt: now });
        const second = await store.putQuotaOverride({ userId: user.id, limits: { concurrentSandboxes: 2 }, updatedAt: later });
        expect(await store.getQuotaOverride(user.id)).toEqual(second);
        expect(second.limits).toEqual({ concurrentSandboxes: 2 });
        expect(await store.listQuotaOverrides()).toEqual([second]);
        expect(await store.deleteQuotaOverride(user.id)).toBe(true);
        expect(await store.deleteQuotaOverride(user.id)).toBe(false);
        expect(await store.getQuotaOverride(user.id)).toBeNull();
      });

      it('refuses an override for a missing user as CONFLICT', async () => {
        await expectAppError(store.putQuotaOverride({ userId: 'usr_missing', limits: {}, updatedAt: now }), 'CONFLICT');
      });
    });

    describe('user credentials', () => {
      it('stores a credential and replaces it keeping the creation time', async () => {
        const user = await createUser();
        expect(await store.getCredential(user.id)).toBeNull();
        const first = await store.putCredential({ userId: user.id, kind: 'api-key', ciphertext: 'v1:aaa', updatedAt: now });
        expect(first).toEqual({ userId: user.id, kind: 'api-key', ciphertext: 'v1:aaa', createdAt: now, updatedAt: now });
        const rotated = await store.putCredential({ userId: user.id, kind: 'oauth-token', ciphertext: 'v1:bbb', updatedAt: later });
        expect(rotated).toEqual({ userId: user.id, kind: 'oauth-token', ciphertext: 'v1:bbb', createdAt: now, updatedAt: later });
        expect(await store.getCredential(user.id)).toEqual(rotated);
        expect(await store.deleteCredential(user.id)).toBe(true);
        expect(await store.deleteCredential(user.id)).toBe(false);
        expect(await store.getCredential(user.id)).toBeNull();
      });
    });

    describe('egress log', () => {
      it("lists a conversation's connections in order, the newest when limited, and keeps them after it is deleted", async () => {
        const { user, conversation } = await createConversationFixture();
        const entry = (host: string, createdAt: string, decision: EgressRecord['decision'] = 'allowed'): EgressRecord => ({
          id: newId('egr'),
          conversationId: conversation.id,
          userId: user.id,
          sandboxId: 'sbx_1',
          host,
          port: 443,
          address: decision === 'allowed' ? '203.0.113.10' : null,
          decision,
          reason: decision === 'allowed' ? null : 'not-allowed',
          createdAt,
        });
        const first = entry('a.example', '2025-06-01T10:00:00.000Z');
        const second = entry('b.example', '2025-06-01T10:00:01.000Z', 'denied');
        const third = entry('c.example', '2025-06-01T10:00:02.000Z', 'failed');
        for (const item of [third, first, second]) await store.recordEgress(item);
        await store.recordEgress({ ...entry('other.example', now), conversationId: 'conv_other' });

        expect(await store.listEgress(conversation.id)).toEqual([first, second, third]);
        expect(await store.listEgress(conversation.id, { limit: 2 })).toEqual([second, third]);
        await store.deleteConversation(conversation.id);
        expect(await store.listEgress(conversation.id)).toHaveLength(3);
      });
    });

    describe('sandbox sessions', () => {
      it('lists the sessions overlapping a period, open ones included, and ends the open ones', async () => {
        const user = await createUser();
        const session = (id: string, startedAt: string) =>
          store.startSandboxSession({ id, userId: user.id, conversationId: 'conv_1', startedAt });
        await session('sbs_before', '2025-05-31T20:00:00.000Z');
        await store.endSandboxSession('sbs_before', '2025-05-31T23:00:00.000Z');
        await session('sbs_across', '2025-05-31T23:30:00.000Z');
        await store.endSandboxSession('sbs_across', '2025-06-01T00:30:00.000Z');
        await session('sbs_open', '2025-06-02T00:00:00.000Z');
        await session('sbs_after', '2025-07-01T00:00:00.000Z');

        const june = await store.listSandboxSessions(user.id, '2025-06-01T00:00:00.000Z', '2025-07-01T00:00:00.000Z');
        expect(june).toEqual([
          { id: 'sbs_across', userId: user.id, conversationId: 'conv_1', startedAt: '2025-05-31T23:30:00.000Z', endedAt: '2025-06-01T00:30:00.000Z' },
          { id: 'sbs_open', userId: user.id, conversationId: 'conv_1', startedAt: '2025-06-02T00:00:00.000Z', endedAt: null },
        ]);

        // Ending an ended session changes nothing.
        await store.endSandboxSession('sbs_across', '2025-06-05T00:00:00.000Z');
        expect(await store.endOpenSandboxSessions(later)).toBe(2);
        expect(await store.endOpenSandboxSessions(later)).toBe(0);
        const after = await store.listSandboxSessions(user.id, '2000-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z');
        expect(after.map((item) => [item.id, item.endedAt])).toEqual([
          ['sbs_before', '2025-05-31T23:00:00.000Z'],
          ['sbs_across', '2025-06-01T00:30:00.000Z'],
          ['sbs_open', later],
          ['sbs_after', later],
        ]);
      });
    });

    describe('shared limits', () => {
      /** Another store on the same database, as a second replica would open (the suite's own store without a peer). */
      const openPeer = async (): Promise<Store> => (options.openPeer ? options.openPeer() : store);
      const closePeer = async (peer: Store): Promise<void> => {
        if (peer !== store) await peer.close();
      };
      const usageRecord = (userId: string, model: string, createdAt: string, inputTokens: number): UsageRecord => ({
        id: newId('use'),
        userId,
        conversationId: 'conv_1',
        turnId: null,
        agentId: null,
        model,
        usage: { inputTokens, outputTokens: 2, cacheCreationInputTokens: 3, cacheReadInputTokens: 4 },
        createdAt,
      });

      it('keeps token totals per UTC day and model with every usage record, from a given day on', async () => {
        const alice = await createUser();
        const bob = await createUser();
        await store.recordUsage(usageRecord(alice.id, 'claude-a', '2025-05-31T23:59:59.999Z', 1000));
        await store.recordUsage(usageRecord(alice.id, 'claude-a', '2025-06-01T00:00:00.000Z', 10));
        await store.recordUsage(usageRecord(alice.id, 'claude-a', '2025-06-01T23:00:00.000Z', 20));
        await store.recordUsage(usageRecord(alice.id, 'claude-b', '2025-06-01T12:00:00.000Z', 5));
        await store.recordUsage(usageRecord(alice.id, 'claude-a', '2025-06-02T08:00:00.000Z', 7));
        await store.recordUsage(usageRecord(bob.id, 'claude-a', '2025-06-01T12:00:00.000Z', 99));

        expect(await store.usageTotals(alice.id, '2025-06-01')).toEqual([
          { day: '2025-06-01', model: 'claude-a', requests: 2, usage: { inputTokens: 30, outputTokens: 4, cacheCreationInputTokens: 6, cacheReadInputTokens: 8 } },
          { day: '2025-06-01', model: 'claude-b', requests: 1, usage: { inputTokens: 5, outputTokens: 2, cacheCreationInputTokens: 3, cacheReadInputTokens: 4 } },
          { day: '2025-06-02', model: 'claude-a', requests: 1, usage: { inputTokens: 7, outputTokens: 2, cacheCreationInputTokens: 3, cacheReadInputTokens: 4 } },
        ]);
        // The same sums as the records themselves.
        const fromRecords = await store.aggregateUsage({ userId: alice.id, from: '2025-06-01T00:00:00.000Z', groupBy: ['day', 'model'] });
        expect(await store.usageTotals(alice.id, '2025-06-01')).toEqual(fromRecords);
        expect(await store.usageTotals('usr_nobody', '2025-01-01')).toEqual([]);
      });

      it('adds nothing to the totals for a usage record refused as a duplicate', async () => {
        const user = await createUser();
        const record = usageRecord(user.id, 'claude-a', now, 10);
        await store.recordUsage(record);
        await expectAppError(store.recordUsage(record), 'CONFLICT');
        expect((await store.usageTotals(user.id, '2025-06-01')).map((total) => [total.requests, total.usage.inputTokens])).toEqual([[1, 10]]);
      });

      it('counts 40 concurrent usage records from two stores (replicas) into the totals, each once', async () => {
        const user = await createUser();
        const peer = await openPeer();
        try {
          await Promise.all(
            Array.from({ length: 40 }, (_, index) => (index % 2 === 0 ? store : peer).recordUsage(usageRecord(user.id, 'claude-a', now, index + 1))),
          );
          const [total] = await store.usageTotals(user.id, '2025-06-01');
          expect(total).toMatchObject({ requests: 40, usage: { inputTokens: (40 * 41) / 2, outputTokens: 80 } });
        } finally {
          await closePeer(peer);
        }
      });

      it('starts a sandbox session only while fewer than the limit are open, and always without a limit', async () => {
        const user = await createUser();
        const other = await createUser();
        const session = (id: string, userId = user.id) => ({ id, userId, conversationId: 'conv_1', startedAt: now, replicaId: 'rep_a' });
        expect(await store.startSandboxSessionWithin(session('sbs_1'), 2)).toEqual({ started: true, open: 0 });
        expect(await store.startSandboxSessionWithin(session('sbs_2'), 2)).toEqual({ started: true, open: 1 });
        expect(await store.startSandboxSessionWithin(session('sbs_3'), 2)).toEqual({ started: false, open: 2 });
        // Another user's sessions are not counted.
        expect(await store.startSandboxSessionWithin(session('sbs_other', other.id), 1)).toEqual({ started: true, open: 0 });
        await store.endSandboxSession('sbs_1', later);
        expect(await store.startSandboxSessionWithin(session('sbs_3'), 2)).toEqual({ started: true, open: 1 });
        expect(await store.startSandboxSessionWithin(session('sbs_4'), null)).toEqual({ started: true, open: 2 });
        expect(await store.startSandboxSessionWithin(session('sbs_5'), 0)).toEqual({ started: false, open: 3 });
        const open = (await store.listSandboxSessions(user.id, past, future)).filter((item) => item.endedAt === null);
        expect(open.map((item) => item.id).sort()).toEqual(['sbs_2', 'sbs_3', 'sbs_4']);
        await expectAppError(store.startSandboxSessionWithin(session('sbs_2'), null), 'CONFLICT');
        await expectAppError(store.startSandboxSessionWithin(session('sbs_6', 'usr_missing'), 5), 'CONFLICT');
      });

      it('starts exactly the limit of 20 concurrent sandbox sessions of one user from two stores (replicas)', async () => {
        const user = await createUser();
        const peer = await openPeer();
        try {
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, index) =>
              (index % 2 === 0 ? store : peer).startSandboxSessionWithin({ id: `sbs_${index}`, userId: user.id, conversationId: `conv_${index}`, startedAt: now, replicaId: index % 2 === 0 ? 'rep_a' : 'rep_b' }, 3),
            ),
          );
          expect(results.filter((result) => result.started)).toHaveLength(3);
          // Each start saw the ones before it: the three that started saw 0, 1 and 2 open.
          expect(results.filter((result) => result.started).map((result) => result.open).sort()).toEqual([0, 1, 2]);
          expect(results.filter((result) => !result.started).every((result) => result.open === 3)).toBe(true);
          expect((await store.listSandboxSessions(user.id, past, future)).filter((item) => item.endedAt === null)).toHaveLength(3);
        } finally {
          await closePeer(peer);
        }
      });

      it("ends a replica's own open sessions, and those of replicas that stopped at their last heartbeat", async () => {
        const user = await createUser();
        const replica = (id: string) => ({ id, version: '0.1.0', url: null, hostname: 'host', pid: 1, startedAt: '2025-06-01T10:00:00.000Z' });
        await store.registerReplica(replica('rep_live'));
        await store.heartbeatReplica('rep_live', '2025-06-01T12:59:50.000Z', false);
        await store.registerReplica(replica('rep_stale'));
        await store.heartbeatReplica('rep_stale', '2025-06-01T12:30:00.000Z', false);
        const start = (id: string, replicaId: string | null, startedAt = '2025-06-01T12:00:00.000Z') =>
          store.startSandboxSessionWithin({ id, userId: user.id, conversationId: 'conv_1', startedAt, replicaId }, null);
        await start('sbs_live', 'rep_live');
        await start('sbs_stale', 'rep_stale');
        await start('sbs_stale_late', 'rep_stale', '2025-06-01T12:40:00.000Z');
        await start('sbs_stale_ended', 'rep_stale');
        await store.endSandboxSession('sbs_stale_ended', '2025-06-01T12:10:00.000Z');
        await start('sbs_gone', 'rep_gone');
        await start('sbs_single', null);

        // Heard of within the last 30 s: rep_live only.
        expect(await store.endSandboxSessionsOfStoppedReplicas('2025-06-01T12:59:30.000Z', later)).toBe(3);
        const ends = async () =>
          Object.fromEntries((await store.listSandboxSessions(user.id, past, future)).map((item) => [item.id, item.endedAt]));
        expect(await ends()).toEqual({
          sbs_live: null,
          sbs_stale: '2025-06-01T12:30:00.000Z',
          // Started after its replica was last heard of: it ends where it started.
          sbs_stale_late: '2025-06-01T12:40:00.000Z',
          sbs_stale_ended: '2025-06-01T12:10:00.000Z',
          sbs_gone: later,
          sbs_single: null,
        });
        expect(await store.endSandboxSessionsOfStoppedReplicas('2025-06-01T12:59:30.000Z', later)).toBe(0);

        expect(await store.endSandboxSessionsOfReplica('rep_live', later)).toBe(1);
        expect(await store.endSandboxSessionsOfReplica('rep_live', later)).toBe(0);
        expect((await ends()).sbs_live).toBe(later);
        expect((await ends()).sbs_single).toBeNull();
      });

      it('counts requests per key in fixed windows that start at the first request, and deletes finished ones', async () => {
        const start = 1_750_000_000_000;
        expect(await store.hitRateLimit('user:a', 60_000, start)).toEqual({ windowStart: start, count: 1 });
        expect(await store.hitRateLimit('user:a', 60_000, start + 59_999)).toEqual({ windowStart: start, count: 2 });
        expect(await store.hitRateLimit('ip:b', 60_000, start + 30_000)).toEqual({ windowStart: start + 30_000, count: 1 });
        // The window is over: the request starts the next one.
        expect(await store.hitRateLimit('user:a', 60_000, start + 60_000)).toEqual({ windowStart: start + 60_000, count: 1 });
        expect(await store.hitRateLimit('user:a', 60_000, start + 60_001)).toEqual({ windowStart: start + 60_000, count: 2 });

        expect(await store.deleteRateLimitWindows(start + 60_000)).toBe(1);
        expect(await store.deleteRateLimitWindows(start + 60_000)).toBe(0);
        expect(await store.hitRateLimit('ip:b', 60_000, start + 70_000)).toEqual({ windowStart: start + 70_000, count: 1 });
        expect(await store.hitRateLimit('user:a', 60_000, start + 70_000)).toEqual({ windowStart: start + 60_000, count: 3 });
      });

      it('counts 60 concurrent requests on one key from two stores (replicas) once each', async () => {
        const peer = await openPeer();
        try {
          const start = 1_750_000_000_000;
          const hits = await Promise.all(Array.from({ length: 60 }, (_, index) => (index % 2 === 0 ? store : peer).hitRateLimit('token:t', 60_000, start + index)));
          expect(hits.map((hit) => hit.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, index) => index + 1));
          expect(new Set(hits.map((hit) => hit.windowStart))).toEqual(new Set([hits.find((hit) => hit.count === 1)!.windowStart]));
        } finally {
          await closePeer(peer);
        }
      });
    });

    describe('platform settings', () => {
      it('stores, replaces and deletes a setting by key', async () => {
        expect(await store.getSetting('agent-limits')).toBeNull();
        await store.putSetting('agent-limits', '{"memoryMb":1024}');
        await store.putSetting('agent-limits', '{"memoryMb":2048}');
        expect(await store.getSetting('agent-limits')).toBe('{"memoryMb":2048}');
        expect(await store.deleteSetting('agent-limits')).toBe(true);
        expect(await store.deleteSetting('agent-limits')).toBe(false);
        expect(await store.getSetting('agent-limits')).toBeNull();
      });
    });

    describe('replicas', () => {
      const replica = (id: string, startedAt = now) => ({
        id,
        version: '0.1.0',
        url: `http://${id}.internal:8080`,
        hostname: `host-${id}`,
        pid: 4242,
        startedAt,
      });

      it('registers replicas, lists them by start time and records heartbeats', async () => {
        await store.registerReplica(replica('rep_b', later));
        await store.registerReplica({ ...replica('rep_a'), url: null });
        expect(await store.listReplicas()).toEqual([
          { ...replica('rep_a'), url: null, heartbeatAt: now, draining: false },
          { ...replica('rep_b', later), heartbeatAt: later, draining: false },
        ]);
        const beat = '2025-06-01T12:00:10.000Z';
        expect(await store.heartbeatReplica('rep_a', beat, true)).toBe(true);
        expect((await store.listReplicas())[0]).toMatchObject({ id: 'rep_a', heartbeatAt: beat, draining: true });
        expect(await store.heartbeatReplica('rep_missing', beat, false)).toBe(false);
      });

      it('replaces a replica registered again, heartbeat at its new start and not draining', async () => {
        await store.registerReplica(replica('rep_a'));
        await store.heartbeatReplica('rep_a', later, true);
        const restarted = '2025-06-01T14:00:00.000Z';
        await store.registerReplica({ ...replica('rep_a', restarted), pid: 7, version: '0.2.0' });
        expect(await store.listReplicas()).toEqual([
          { ...replica('rep_a', restarted), pid: 7, version: '0.2.0', heartbeatAt: restarted, draining: false },
        ]);
      });

      it('deletes a replica, after which its heartbeat reports it gone', async () => {
        await store.registerReplica(replica('rep_a'));
        await store.registerReplica(replica('rep_b'));
        await store.deleteReplica('rep_a');
        await store.deleteReplica('rep_missing');
        expect((await store.listReplicas()).map((item) => item.id)).toEqual(['rep_b']);
        expect(await store.heartbeatReplica('rep_a', later, false)).toBe(false);
      });
    });

    describe('conversation leases', () => {
      const t0 = '2025-06-01T12:00:00.000Z';
      const t1 = '2025-06-01T12:00:30.000Z';
      const t2 = '2025-06-01T12:01:00.000Z';
      const t3 = '2025-06-01T12:01:30.000Z';

      it('gives a free lease to the first claimant with token 1 and records it', async () => {
        const { conversation } = await createConversationFixture();
        expect(await store.getLease(conversation.id)).toBeNull();
        const lease = await store.claimLease(conversation.id, 'rep_a', t0, t1);
        expect(lease).toEqual({ conversationId: conversation.id, replicaId: 'rep_a', token: 1, expiresAt: t1 });
        expect(await store.getLease(conversation.id)).toEqual(lease);
        expect(await store.listLeaseHistory(conversation.id)).toEqual([
          { conversationId: conversation.id, token: 1, replicaId: 'rep_a', previousReplicaId: null, claimedAt: t0 },
        ]);
      });

      it('refuses a lease another replica holds until it expires, then hands it over with the next token', async () => {
        const { conversation } = await createConversationFixture();
        await store.claimLease(conversation.id, 'rep_a', t0, t2);
        expect(await store.claimLease(conversation.id, 'rep_b', t1, t3)).toBeNull();
        expect(await store.getLease(conversation.id)).toMatchObject({ replicaId: 'rep_a', token: 1, expiresAt: t2 });
        expect(await store.listLeaseHistory(conversation.id)).toHaveLength(1);

        // Expired at t2 exactly: the holder's time is up.
        const taken = await store.claimLease(conversation.id, 'rep_b', t2, t3);
        expect(taken).toEqual({ conversationId: conversation.id, replicaId: 'rep_b', token: 2, expiresAt: t3 });
        expect(await store.getLease(conversation.id)).toEqual(taken);
        expect(await store.listLeaseHistory(conversation.id)).toEqual([
          { conversationId: conversation.id, token: 1, replicaId: 'rep_a', previousReplicaId: null, claimedAt: t0 },
          { conversationId: conversation.id, token: 2, replicaId: 'rep_b', previousReplicaId: 'rep_a', claimedAt: t2 },
        ]);
      });

      it('renews a lease claimed again by its holder, expired or not, keeping the token and writing no history', async () => {
        const { conversation } = await createConversationFixture();
        await store.claimLease(conversation.id, 'rep_a', t0, t1);
        expect(await store.claimLease(conversation.id, 'rep_a', t0, t2)).toMatchObject({ token: 1, expiresAt: t2 });
        expect(await store.claimLease(conversation.id, 'rep_a', t3, later)).toMatchObject({ token: 1, expiresAt: later });
        expect(await store.listLeaseHistory(conversation.id)).toHaveLength(1);
      });

      it('renews every lease a replica holds, and only those', async () => {
        const first = await createConversationFixture();
        const second = await createConversationFixture();
        const other = await createConversationFixture();
        await store.claimLease(first.conversation.id, 'rep_a', t0, t1);
        await store.claimLease(second.conversation.id, 'rep_a', t0, t1);
        await store.claimLease(other.conversation.id, 'rep_b', t0, t1);
        const renewed = await store.renewLeases('rep_a', t3);
        expect(renewed.map((lease) => [lease.conversationId, lease.token, lease.expiresAt]).sort()).toEqual(
          [
            [first.conversation.id, 1, t3],
            [second.conversation.id, 1, t3],
          ].sort(),
        );
        expect(await store.getLease(other.conversation.id)).toMatchObject({ replicaId: 'rep_b', expiresAt: t1 });
        expect(await store.renewLeases('rep_none', t3)).toEqual([]);
        expect(await store.countLeasesByReplica()).toEqual({ rep_a: 2, rep_b: 1 });
      });

      it('releases a lease only with its current token; the next holder still gets a higher token', async () => {
        const { conversation } = await createConversationFixture();
        await store.claimLease(conversation.id, 'rep_a', t0, later);
        expect(await store.releaseLease({ conversationId: conversation.id, replicaId: 'rep_a', token: 2 })).toBe(false);
        expect(await store.releaseLease({ conversationId: conversation.id, replicaId: 'rep_b', token: 1 })).toBe(false);
        expect(await store.releaseLease({ conversationId: conversation.id, replicaId: 'rep_a', token: 1 })).toBe(true);
        expect(await store.releaseLease({ conversationId: conversation.id, replicaId: 'rep_a', token: 1 })).toBe(false);
        expect(await store.getLease(conversation.id)).toBeNull();
        expect(await store.countLeasesByReplica()).toEqual({});

        // Free again before it would have expired.
        expect(await store.claimLease(conversation.id, 'rep_b', t1, later)).toMatchObject({ replicaId: 'rep_b', token: 2 });
        await store.releaseLease({ conversationId: conversation.id, replicaId: 'rep_b', token: 2 });
        // Its former holder coming back is a change of holder too.
        expect(await store.claimLease(conversation.id, 'rep_a', t2, later)).toMatchObject({ replicaId: 'rep_a', token: 3 });
        expect((await store.listLeaseHistory(conversation.id)).map((change) => [change.token, change.replicaId, change.previousReplicaId])).toEqual([
          [1, 'rep_a', null],
          [2, 'rep_b', null],
          [3, 'rep_a', null],
        ]);
      });

      it('gives a free lease, then an expired one, to exactly one of 20 concurrent claimants', async () => {
        const { conversation } = await createConversationFixture();
        const claimAll = (at: string, until: string) =>
          Promise.all(Array.from({ length: 20 }, (_, index) => store.claimLease(conversation.id, `rep_${index}`, at, until)));

        const first = (await claimAll(t0, t1)).filter((lease) => lease !== null);
        expect(first).toHaveLength(1);
        expect(first[0]?.token).toBe(1);
        expect(await store.getLease(conversation.id)).toEqual(first[0]);

        const second = (await claimAll(t2, t3)).filter((lease) => lease !== null);
        expect(second).toHaveLength(1);
        // The holder itself is among the claimants; it would renew with token 1, anyone else takes token 2.
        expect(second[0]?.token).toBe(second[0]?.replicaId === first[0]?.replicaId ? 1 : 2);
        expect(await store.getLease(conversation.id)).toEqual(second[0]);
        expect(await store.listLeaseHistory(conversation.id)).toHaveLength(second[0]?.token ?? 0);
      });

      it('lists expired leases oldest first, leaving out live and released ones', async () => {
        const live = await createConversationFixture();
        const older = await createConversationFixture();
        const newer = await createConversationFixture();
        const released = await createConversationFixture();
        await store.claimLease(live.conversation.id, 'rep_a', t0, t3);
        await store.claimLease(newer.conversation.id, 'rep_a', t0, t1);
        await store.claimLease(older.conversation.id, 'rep_b', t0, t0);
        await store.claimLease(released.conversation.id, 'rep_b', t0, t0);
        await store.releaseLease({ conversationId: released.conversation.id, replicaId: 'rep_b', token: 1 });
        expect(await store.listExpiredLeases(t2)).toEqual([
          { conversationId: older.conversation.id, replicaId: 'rep_b', token: 1, expiresAt: t0 },
          { conversationId: newer.conversation.id, replicaId: 'rep_a', token: 1, expiresAt: t1 },
        ]);
        expect(await store.listExpiredLeases(past)).toEqual([]);
      });

      it('lists conversations with queued turns and no live lease, each once, longest waiting first', async () => {
        const free = await createConversationFixture();
        const held = await createConversationFixture();
        const expired = await createConversationFixture();
        const released = await createConversationFixture();
        const idle = await createConversationFixture();
        await store.createTurn({ id: newId('turn'), conversationId: free.conversation.id, input: 'a' });
        await sleep(3);
        for (const fixture of [held, expired, released]) {
          await store.createTurn({ id: newId('turn'), conversationId: fixture.conversation.id, input: 'b' });
          await sleep(3);
        }
        await store.createTurn({ id: newId('turn'), conversationId: free.conversation.id, input: 'c' });
        const running = await store.createTurn({ id: newId('turn'), conversationId: idle.conversation.id, input: 'd' });
        await store.updateTurn(running.id, { status: 'running' });
        await store.claimLease(held.conversation.id, 'rep_a', t0, t3);
        await store.claimLease(expired.conversation.id, 'rep_a', t0, t1);
        await store.claimLease(released.conversation.id, 'rep_a', t0, t3);
        await store.releaseLease({ conversationId: released.conversation.id, replicaId: 'rep_a', token: 1 });

        expect(await store.listUnownedQueuedConversations(t2)).toEqual([free.conversation.id, expired.conversation.id, released.conversation.id]);
        expect(await store.listUnownedQueuedConversations(t0)).toEqual([free.conversation.id, released.conversation.id]);
      });

      it('refuses a lease on a missing conversation as NOT_FOUND', async () => {
        await expectAppError(store.claimLease('conv_missing', 'rep_a', t0, t1), 'NOT_FOUND');
      });

      it('deletes the lease and its history with the conversation', async () => {
        const { conversation } = await createConversationFixture();
        await store.claimLease(conversation.id, 'rep_a', t0, t1);
        await store.claimLease(conversation.id, 'rep_b', t2, t3);
        expect(await store.deleteConversation(conversation.id)).toBe(true);
        expect(await store.getLease(conversation.id)).toBeNull();
        expect(await store.listLeaseHistory(conversation.id)).toEqual([]);
        expect(await store.listExpiredLeases(later)).toEqual([]);
      });
    });

    describe('fencing', () => {
      const t0 = '2025-06-01T12:00:00.000Z';
      const t1 = '2025-06-01T12:00:30.000Z';
      const t2 = '2025-06-01T12:01:00.000Z';

      it('appends with the current fence, even past expiry, and refuses a taken-over one as LEASE_LOST writing nothing', async () => {
        const { conversation } = await createConversationFixture();
        const lease = await store.claimLease(conversation.id, 'rep_a', t0, t1);
        const fenceA = { replicaId: 'rep_a', token: lease?.token ?? 0 };
        expect((await store.appendEvent(conversation.id, delta('t', 'one'), fenceA)).seq).toBe(1);
        // Expired but not taken over: the holder may still write.
        expect((await store.appendEvent(conversation.id, delta('t', 'two'), fenceA)).seq).toBe(2);

        const taken = await store.claimLease(conversation.id, 'rep_b', t2, later);
        const before = await store.getConversation(conversation.id);
        const error = await expectAppError(store.appendEvent(conversation.id, delta('t', 'stale'), fenceA), 'LEASE_LOST');
        expect(error.status).toBe(409);
        expect(await store.getConversation(conversation.id)).toEqual(before);
        expect((await store.listEvents(conversation.id)).map((event) => event.seq)).toEqual([1, 2]);

        const fenceB = { replicaId: 'rep_b', token: taken?.token ?? 0 };
        expect((await store.appendEvent(conversation.id, delta('t', 'three'), fenceB)).seq).toBe(3);
        // The same replica with an older token is stale too.
        await expectAppError(store.appendEvent(conversation.id, delta('t', 'x'), { replicaId: 'rep_b', token: 1 }), 'LEASE_LOST');
        // Unfenced writes are not checked.
        expect((await store.appendEvent(conversation.id, delta('t', 'four'))).seq).toBe(4);
      });

      it('refuses fenced appends without a lease or after its release', async () => {
        const { conversation } = await createConversationFixture();
        await expectAppError(store.appendEvent(conversation.id, delta('t', 'x'), { replicaId: 'rep_a', token: 1 }), 'LEASE_LOST');
        await store.claimLease(conversation.id, 'rep_a', t0, later);
        await store.releaseLease({ conversationId: conversation.id, replicaId: 'rep_a', token: 1 });
        await expectAppError(store.appendEvent(conversation.id, delta('t', 'x'), { replicaId: 'rep_a', token: 1 }), 'LEASE_LOST');
        expect(await store.listEvents(conversation.id)).toEqual([]);
        expect((await store.getConversation(conversation.id))?.lastSeq).toBe(0);
      });

      it("updates a turn with its conversation's current fence and refuses a taken-over one, leaving the turn as it was", async () => {
        const { conversation } = await createConversationFixture();
        const turn = await store.createTurn({ id: newId('turn'), conversationId: conversation.id, input: 'hi' });
        await store.claimLease(conversation.id, 'rep_a', t0, t1);
        const fenceA = { replicaId: 'rep_a', token: 1 };
        const running = await store.updateTurn(turn.id, { status: 'running', startedAt: t0 }, fenceA);
        expect(running).toEqual({ ...turn, status: 'running', startedAt: t0 });
        expect(await store.updateTurn(turn.id, {}, fenceA)).toEqual(running);
        expect(await store.updateTurn('turn_missing', { status: 'failed' }, fenceA)).toBeNull();

        await store.claimLease(conversation.id, 'rep_b', t2, later);
        await expectAppError(store.updateTurn(turn.id, { status: 'completed', endedAt: t2 }, fenceA), 'LEASE_LOST');
        await expectAppError(store.updateTurn(turn.id, {}, fenceA), 'LEASE_LOST');
        expect(await store.getTurn(turn.id)).toEqual(running);
        const failed = await store.updateTurn(turn.id, { status: 'failed', error: 'replica lost' }, { replicaId: 'rep_b', token: 2 });
        expect(failed).toMatchObject({ status: 'failed', error: 'replica lost' });
      });

      it("checks a turn's fence against its own conversation's lease", async () => {
        const mine = await createConversationFixture();
        const other = await createConversationFixture();
        const turn = await store.createTurn({ id: newId('turn'), conversationId: mine.conversation.id, input: 'hi' });
        await store.claimLease(other.conversation.id, 'rep_a', t0, later);
        await expectAppError(store.updateTurn(turn.id, { status: 'running' }, { replicaId: 'rep_a', token: 1 }), 'LEASE_LOST');
        expect((await store.getTurn(turn.id))?.status).toBe('queued');
      });
    });

    describe('gateway grants', () => {
      const t0 = '2025-06-01T12:00:00.000Z';
      const t1 = '2025-06-01T12:00:30.000Z';
      const t2 = '2025-06-01T12:01:00.000Z';

      const grantFixture = async (overrides: Partial<NewGatewayGrant> = {}): Promise<NewGatewayGrant> => {
        const { user, agent, conversation } = await createConversationFixture();
        return {
          tokenHash: newId('hash'),
          sandboxId: newId('sbx'),
          userId: user.id,
          conversationId: conversation.id,
          agentId: agent.id,
          replicaId: 'rep_a',
          egressDomains: ['packages.example.com', '*.git.example.com:443'],
          createdAt: t0,
          ...overrides,
        };
      };

      it('stores a grant live and with no turn, and reads it back by its token hash', async () => {
        const grant = await grantFixture({ agentId: null });
        const created = await store.createGatewayGrant(grant);
        expect(created).toEqual({ ...grant, turnId: null, revokedAt: null });
        expect(await store.getGatewayGrant(grant.tokenHash)).toEqual(created);
        expect(await store.getGatewayGrant('hash_missing')).toBeNull();
      });

      it('rejects a second grant with the same token hash as CONFLICT, and one for a missing conversation too', async () => {
        const grant = await grantFixture();
        await store.createGatewayGrant(grant);
        await expectAppError(store.createGatewayGrant({ ...grant, sandboxId: newId('sbx') }), 'CONFLICT');
        await expectAppError(store.createGatewayGrant({ ...grant, tokenHash: newId('hash'), conversationId: 'conv_missing' }), 'CONFLICT');
      });

      it("sets a live grant's turn and egress domains, and nothing once it is revoked", async () => {
        const grant = await grantFixture();
        await store.createGatewayGrant(grant);
        expect(await store.updateGatewayGrant(grant.tokenHash, { turnId: 'turn_1' })).toBe(true);
        expect(await store.getGatewayGrant(grant.tokenHash)).toMatchObject({ turnId: 'turn_1', egressDomains: grant.egressDomains });
        expect(await store.updateGatewayGrant(grant.tokenHash, { egressDomains: ['only.example.com'] })).toBe(true);
        expect(await store.getGatewayGrant(grant.tokenHash)).toMatchObject({ turnId: 'turn_1', egressDomains: ['only.example.com'] });
        expect(await store.updateGatewayGrant(grant.tokenHash, { turnId: null, egressDomains: [] })).toBe(true);
        expect(await store.getGatewayGrant(grant.tokenHash)).toMatchObject({ turnId: null, egressDomains: [] });
        expect(await store.updateGatewayGrant(grant.tokenHash, {})).toBe(true);

        expect(await store.revokeGatewayGrant(grant.tokenHash, t1)).toBe(true);
        expect(await store.revokeGatewayGrant(grant.tokenHash, t2)).toBe(false);
        expect(await store.updateGatewayGrant(grant.tokenHash, { turnId: 'turn_2' })).toBe(false);
        expect(await store.updateGatewayGrant(grant.tokenHash, {})).toBe(false);
        expect(await store.getGatewayGrant(grant.tokenHash)).toEqual({ ...grant, turnId: null, egressDomains: [], revokedAt: t1 });
        expect(await store.updateGatewayGrant('hash_missing', { turnId: 'turn_1' })).toBe(false);
        expect(await store.revokeGatewayGrant('hash_missing', t1)).toBe(false);
      });

      it('deletes the grants of gone, silent or restarted replicas and the ones revoked before the cut-off, and keeps the rest', async () => {
        const replica = (id: string, startedAt: string) => ({ id, version: '0.1.0', url: null, hostname: 'host', pid: 1, startedAt });
        await store.registerReplica(replica('rep_live', t0));
        await store.heartbeatReplica('rep_live', t2, false);
        await store.registerReplica(replica('rep_silent', t0));
        const live = await grantFixture({ replicaId: 'rep_live' });
        const revokedLately = await grantFixture({ replicaId: 'rep_live' });
        const revokedLongAgo = await grantFixture({ replicaId: 'rep_live' });
        const silent = await grantFixture({ replicaId: 'rep_silent' });
        const gone = await grantFixture({ replicaId: 'rep_gone' });
        // Issued before rep_live's current process started: by an earlier one under the same id, which is gone.
        const earlier = await grantFixture({ replicaId: 'rep_live', createdAt: past });
        const all = [live, revokedLately, revokedLongAgo, silent, gone, earlier];
        for (const grant of all) await store.createGatewayGrant(grant);
        await store.revokeGatewayGrant(revokedLately.tokenHash, t2);
        await store.revokeGatewayGrant(revokedLongAgo.tokenHash, t0);

        expect(await store.deleteStaleGatewayGrants({ replicaSeenBefore: t1, revokedBefore: t1 })).toBe(4);
        const left = async () =>
          (await Promise.all(all.map((grant) => store.getGatewayGrant(grant.tokenHash)))).map((grant) => grant?.tokenHash ?? null);
        expect(await left()).toEqual([live.tokenHash, revokedLately.tokenHash, null, null, null, null]);
        expect(await store.deleteStaleGatewayGrants({ replicaSeenBefore: t1, revokedBefore: t1 })).toBe(0);

        // A heartbeat exactly at the cut-off is recent enough; a revocation exactly at it is not old enough.
        expect(await store.deleteStaleGatewayGrants({ replicaSeenBefore: t2, revokedBefore: t2 })).toBe(0);
        await store.deleteReplica('rep_live');
        expect(await store.deleteStaleGatewayGrants({ replicaSeenBefore: t0, revokedBefore: past })).toBe(2);
        expect(await left()).toEqual([null, null, null, null, null, null]);
      });

      it('deletes the grants of a conversation with it', async () => {
        const grant = await grantFixture();
        await store.createGatewayGrant(grant);
        expect(await store.deleteConversation(grant.conversationId)).toBe(true);
        expect(await store.getGatewayGrant(grant.tokenHash)).toBeNull();
      });
    });

    describe('replica tasks', () => {
      const t0 = '2025-06-01T12:00:00.000Z';
      const t1 = '2025-06-01T12:00:30.000Z';
      const t2 = '2025-06-01T12:01:00.000Z';
      const t3 = '2025-06-01T12:01:30.000Z';

      it('gives a free task to one replica, renews it for its holder, and hands it over once expired or released', async () => {
        expect(await store.claimTask('clean', 'rep_a', t0, t1)).toBe(true);
        expect(await store.claimTask('clean', 'rep_b', t0, t2)).toBe(false);
        // Another task is claimed on its own.
        expect(await store.claimTask('other', 'rep_b', t0, t1)).toBe(true);
        // Its holder renews it, expired or not.
        expect(await store.claimTask('clean', 'rep_a', t1, t2)).toBe(true);
        expect(await store.claimTask('clean', 'rep_b', t1, t3)).toBe(false);
        // Expired at t2 exactly: another replica takes it, and its former holder no longer has it.
        expect(await store.claimTask('clean', 'rep_b', t2, t3)).toBe(true);
        expect(await store.claimTask('clean', 'rep_a', t2, t3)).toBe(false);

        expect(await store.releaseTask('clean', 'rep_a')).toBe(false);
        expect(await store.releaseTask('clean', 'rep_b')).toBe(true);
        expect(await store.releaseTask('clean', 'rep_b')).toBe(false);
        // Free again before it would have expired.
        expect(await store.claimTask('clean', 'rep_a', t2, t3)).toBe(true);
      });

      it('gives a free task, then an expired one, to exactly one of 20 concurrent claimants on several replicas', async () => {
        // On a database that serves several replicas, the claimants use separate stores, as replicas would.
        const peers = options.openPeer === undefined ? [] : await Promise.all([options.openPeer(), options.openPeer(), options.openPeer()]);
        const stores = [store, ...peers];
        try {
          const claimAll = async (at: string, until: string): Promise<string[]> => {
            const claims = await Promise.all(
              Array.from({ length: 20 }, (_, index) => stores[index % stores.length]!.claimTask('clean', `rep_${index}`, at, until)),
            );
            return claims.flatMap((won, index) => (won ? [`rep_${index}`] : []));
          };
          const first = await claimAll(t0, t1);
          expect(first).toHaveLength(1);
          // Held: nobody else gets it, whatever store they claim through.
          const others = await Promise.all(
            stores.map((each, index) => each.claimTask('clean', `rep_other_${index}`, t0, t3)),
          );
          expect(others).toEqual(stores.map(() => false));

          const second = await claimAll(t2, t3);
          expect(second).toHaveLength(1);
          // Only the winner renews it now, through any store.
          const loser = second[0] === 'rep_0' ? 'rep_1' : 'rep_0';
          for (const each of stores) {
            expect(await each.claimTask('clean', loser, t2, t3)).toBe(false);
            expect(await each.claimTask('clean', second[0]!, t2, t3)).toBe(true);
          }
        } finally {
          await Promise.all(peers.map((peer) => peer.close()));
        }
      });
    });

    describe('notifications', () => {
      /** Resolves with the arguments of the listener's next call; rejects after a bound that only a hang exceeds. */
      const nextCall = <Arguments extends unknown[]>(
        subscribe: (listener: (...args: Arguments) => void) => () => void,
        what: string,
      ): Promise<Arguments> =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            unsubscribe();
            reject(new Error(`no ${what} within 10 s`));
          }, 10_000);
          const unsubscribe = subscribe((...args) => {
            clearTimeout(timer);
            unsubscribe();
            resolve(args);
          });
        });

      /**
       * The store that writes, as another replica would, and a promise that the listening store hears it. A store
       * listening over a connection (one with a peer) reports a gap once it listens: what was sent before is missed.
       */
      const listenToPeer = async (): Promise<Store> => {
        if (options.openPeer === undefined) return store;
        const listening = nextCall<[]>((listener) => store.notifications.onGap(listener), 'gap once listening');
        const peer = await options.openPeer();
        await listening;
        return peer;
      };
      const closePeer = async (peer: Store): Promise<void> => {
        if (peer !== store) await peer.close();
      };

      it('tells every listener of each event appended, by any replica, in order, and stops at unsubscribe', async () => {
        const { conversation } = await createConversationFixture();
        const heard: Array<[string, number]> = [];
        const alsoHeard: Array<[string, number]> = [];
        const stop = store.notifications.onEventAppended((conversationId, seq) => heard.push([conversationId, seq]));
        store.notifications.onEventAppended((conversationId, seq) => alsoHeard.push([conversationId, seq]));
        const peer = await listenToPeer();
        try {
          const third = nextCall<[string, number]>(
            (listener) => store.notifications.onEventAppended((conversationId, seq) => seq === 3 && listener(conversationId, seq)),
            'third event',
          );
          for (const text of ['a', 'b', 'c']) await peer.appendEvent(conversation.id, delta('t', text));
          await third;
          expect(heard).toEqual([
            [conversation.id, 1],
            [conversation.id, 2],
            [conversation.id, 3],
          ]);
          expect(alsoHeard).toEqual(heard);

          stop();
          const fourth = nextCall<[string, number]>(
            (listener) => store.notifications.onEventAppended((conversationId, seq) => seq === 4 && listener(conversationId, seq)),
            'fourth event',
          );
          await peer.appendEvent(conversation.id, delta('t', 'd'));
          await fourth;
          expect(heard).toHaveLength(3);
          expect(alsoHeard).toHaveLength(4);
        } finally {
          await closePeer(peer);
        }
      });

      it('sends nothing for an append refused by its fence', async () => {
        const { conversation } = await createConversationFixture();
        const heard: number[] = [];
        store.notifications.onEventAppended((_conversationId, seq) => heard.push(seq));
        const peer = await listenToPeer();
        try {
          await peer.claimLease(conversation.id, 'rep_b', now, later);
          await expectAppError(peer.appendEvent(conversation.id, delta('t', 'x'), { replicaId: 'rep_a', token: 1 }), 'LEASE_LOST');
          const next = nextCall<[string, number]>((listener) => store.notifications.onEventAppended(listener), 'event');
          await peer.appendEvent(conversation.id, delta('t', 'y'), { replicaId: 'rep_b', token: 1 });
          expect(await next).toEqual([conversation.id, 1]);
          expect(heard).toEqual([1]);
        } finally {
          await closePeer(peer);
        }
      });

      it('passes a wake from any replica to every wake listener', async () => {
        const heard: string[] = [];
        store.notifications.onWake((conversationId) => heard.push(conversationId));
        const peer = await listenToPeer();
        try {
          const woken = nextCall<[string]>((listener) => store.notifications.onWake(listener), 'wake');
          await peer.notifications.wake('conv_1');
          expect(await woken).toEqual(['conv_1']);
          expect(heard).toEqual(['conv_1']);
        } finally {
          await closePeer(peer);
        }
      });
    });

    describe('errors', () => {
      it('wraps a driver error it does not recognize as INTERNAL naming the operation', async () => {
        const { user, agent } = await createConversationFixture();
        const error = await expectAppError(
          store.createConversation({
            id: newId('conv'),
            userId: user.id,
            agentId: agent.id,
            title: null as unknown as string,
          }),
          'INTERNAL',
        );
        expect(error.message).toContain('createConversation');
        expect(error.message).not.toContain(user.id);
        expect(error.cause).toBeInstanceOf(Error);
      });
    });
  });
}
