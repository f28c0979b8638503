import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.ts';
import type { EventData } from '../core/events.ts';
import { newId } from '../core/ids.ts';
import type { Store } from '../core/store.ts';
import type { Agent, EgressRecord, TokenUsage, UsageRecord, User } from '../core/types.ts';

/**
 * The behaviour every Store implementation must show. `makeStore` returns a store on an empty
 * database (migrated or not); the suite migrates it and closes it after each test.
 */
export function describeStoreContract(name: string, makeStore: () => Promise<Store>): void {
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
