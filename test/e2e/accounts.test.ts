import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

describe('accounts and authentication', () => {
  let test: TestPlatform;
  beforeAll(async () => {
    test = await startTestPlatform({ env: { AGENTYARD_REGISTRATION: 'invite' } });
  });
  afterAll(() => test?.close());

  it('makes the first account admin, then follows the invite policy', async () => {
    const admin = await test.api.register('root@example.com');
    expect((await admin.request('GET', '/api/auth/me')).body.user).toMatchObject({ email: 'root@example.com', role: 'admin' });

    const uninvited = await test.api.request('POST', '/api/auth/register', { email: 'bob@example.com', password: 'password123' });
    expect(uninvited.status).toBe(403);
    expect(uninvited.body.error.code).toBe('FORBIDDEN');

    const invite = await admin.request('POST', '/api/admin/invites', { email: 'bob@example.com' });
    expect(invite.status).toBe(201);
    const wrongEmail = await test.api.request('POST', '/api/auth/register', { email: 'eve@example.com', password: 'password123', inviteCode: invite.body.code });
    expect(wrongEmail.status).toBe(403);
    const invited = await test.api.request('POST', '/api/auth/register', { email: 'Bob@Example.com', password: 'password123', inviteCode: invite.body.code });
    expect(invited.status).toBe(201);
    expect(invited.body.user).toMatchObject({ email: 'bob@example.com', role: 'user' });
    const reused = await test.api.request('POST', '/api/auth/register', { email: 'carol@example.com', password: 'password123', inviteCode: invite.body.code });
    expect(reused.status).toBe(403);

    const bob = await test.api.request('POST', '/api/auth/login', { email: 'bob@example.com', password: 'password123' });
    expect(bob.status).toBe(200);
    const cookie = bob.headers.get('set-cookie')!;
    expect(cookie).toMatch(/agentyard_session=/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const asBob = new ApiClient(test.platform.url, { cookie: cookie.split(';')[0]! });
    expect((await asBob.request('GET', '/api/admin/users')).status).toBe(403);
    const users = await admin.request('GET', '/api/admin/users');
    expect(users.body.users.map((user: { email: string }) => user.email)).toEqual(['root@example.com', 'bob@example.com']);
  });

  it('stores passwords hashed with scrypt and refuses wrong ones', async () => {
    const user = await test.platform.store.getUserByEmail('root@example.com');
    expect(user!.passwordHash).toMatch(/^scrypt\$/);
    expect(user!.passwordHash).not.toContain('correct horse battery');
    const wrong = await test.api.request('POST', '/api/auth/login', { email: 'root@example.com', password: 'wrong password' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('UNAUTHORIZED');
    const unknown = await test.api.request('POST', '/api/auth/login', { email: 'nobody@example.com', password: 'wrong password' });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.message).toBe(wrong.body.error.message);
  });

  it('shows an API token once, stores only its hash, lists it and revokes it', async () => {
    const session = await new ApiClient(test.platform.url).request('POST', '/api/auth/login', { email: 'root@example.com', password: 'correct horse battery' });
    const admin = new ApiClient(test.platform.url, { cookie: session.headers.get('set-cookie')!.split(';')[0]! });
    const created = await admin.request('POST', '/api/tokens', { name: 'ci' });
    expect(created.status).toBe(201);
    const token: string = created.body.token;
    expect(token.length).toBeGreaterThan(40);

    const listed = await admin.request('GET', '/api/tokens');
    const entry = listed.body.tokens.find((item: { id: string }) => item.id === created.body.id);
    expect(entry).toMatchObject({ name: 'ci', revokedAt: null });
    expect(JSON.stringify(listed.body)).not.toContain(token);
    expect(await test.platform.store.findLiveApiToken(token, new Date().toISOString())).toBeNull();

    const withToken = admin.withToken(token);
    expect((await withToken.request('GET', '/api/auth/me')).status).toBe(200);
    expect((await admin.request('DELETE', `/api/tokens/${created.body.id}`)).status).toBe(204);
    const revoked = await withToken.request('GET', '/api/auth/me');
    expect(revoked.status).toBe(401);
    expect(revoked.body.error).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/revoked/) });
  });

  it('refuses a cookie-authenticated change from another origin', async () => {
    const admin = await new ApiClient(test.platform.url).request('POST', '/api/auth/login', { email: 'root@example.com', password: 'correct horse battery' });
    const cookie = admin.headers.get('set-cookie')!.split(';')[0]!;
    const client = new ApiClient(test.platform.url, { cookie });
    const crossSite = await client.request('POST', '/api/tokens', { name: 'x' }, { origin: 'https://evil.example' });
    expect(crossSite.status).toBe(403);
    const sameSite = await client.request('POST', '/api/tokens', { name: 'x' }, { origin: test.platform.url });
    expect(sameSite.status).toBe(201);
  });

  it('lets admins disable a user, which ends their access', async () => {
    const admin = await new ApiClient(test.platform.url).request('POST', '/api/auth/login', { email: 'root@example.com', password: 'correct horse battery' });
    const client = new ApiClient(test.platform.url, { cookie: admin.headers.get('set-cookie')!.split(';')[0]! });
    const bobLogin = await test.api.request('POST', '/api/auth/login', { email: 'bob@example.com', password: 'password123' });
    const bob = new ApiClient(test.platform.url, { cookie: bobLogin.headers.get('set-cookie')!.split(';')[0]! });
    const { body } = await client.request('GET', '/api/admin/users');
    const bobId = body.users.find((user: { email: string }) => user.email === 'bob@example.com').id;
    expect((await client.request('PATCH', `/api/admin/users/${bobId}`, { disabled: true })).status).toBe(200);
    expect((await bob.request('GET', '/api/auth/me')).status).toBe(401);
    const login = await test.api.request('POST', '/api/auth/login', { email: 'bob@example.com', password: 'password123' });
    expect(login.status).toBe(403);
  });
});

describe('registration policy: closed', () => {
  it('lets only the first account register', async () => {
    const test = await startTestPlatform({ env: { AGENTYARD_REGISTRATION: 'closed' } });
    try {
      expect((await test.api.request('POST', '/api/auth/register', { email: 'a@example.com', password: 'password123' })).status).toBe(201);
      const second = await test.api.request('POST', '/api/auth/register', { email: 'b@example.com', password: 'password123' });
      expect(second.status).toBe(403);
      expect(second.body.error.message).toMatch(/closed/);
    } finally {
      await test.close();
    }
  });
});
