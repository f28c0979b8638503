import { describe, expect, it } from 'vitest';
import { startTestPlatform } from '../support/platform.ts';

describe('the first account', () => {
  const registerAll = (url: string, count: number) =>
    Promise.all(
      Array.from({ length: count }, (_, index) =>
        fetch(`${url}/api/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: `first-${index}@example.com`, password: 'correct horse battery' }),
        }).then(async (response) => ({ status: response.status, body: (await response.json()) as any })),
      ),
    );

  it('is the only admin when 20 registrations reach a fresh server at once (regression: all of them became admin)', async () => {
    const test = await startTestPlatform();
    try {
      const answers = await registerAll(test.platform.url, 20);
      expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(201));
      expect(answers.filter((answer) => answer.body.user.role === 'admin')).toHaveLength(1);
      const users = await test.platform.store.listUsers();
      expect(users).toHaveLength(20);
      expect(users.filter((user) => user.role === 'admin')).toHaveLength(1);
    } finally {
      await test.close();
    }
  });

  it('is the only account that gets in when registration is closed, however many race for it', async () => {
    const test = await startTestPlatform({ env: { AGENTYARD_REGISTRATION: 'closed' } });
    try {
      const answers = await registerAll(test.platform.url, 20);
      const created = answers.filter((answer) => answer.status === 201);
      expect(created).toHaveLength(1);
      expect(created[0]!.body.user.role).toBe('admin');
      expect(answers.filter((answer) => answer.status === 403).map((answer) => answer.body.error.code)).toEqual(Array(19).fill('FORBIDDEN'));
      expect(await test.platform.store.countUsers()).toBe(1);
    } finally {
      await test.close();
    }
  });
});
