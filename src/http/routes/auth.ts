import { z } from 'zod';
import { clearSessionCookie, requireUser, sessionCookie, setSessionCookie } from '../auth.ts';
import { userSchema } from '../schemas.ts';
import type { App, AppServices } from '../app.ts';

const newPassword = z.string().min(8, 'at least 8 characters').max(200);
const credentials = z.object({
  email: z.email().max(320),
  password: newPassword,
});

export function registerAuthRoutes(app: App, { accounts, config }: AppServices): void {
  app.post(
    '/api/auth/register',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create an account (the first one becomes admin) and sign in',
        description: 'Follows AGENTYARD_REGISTRATION: open, invite (needs inviteCode) or closed.',
        body: credentials.extend({ inviteCode: z.string().max(200).optional() }),
        response: { 201: z.object({ user: userSchema }) },
      },
    },
    async (request, reply) => {
      const user = await accounts.register(request.body);
      const session = await accounts.login(request.body.email, request.body.password, request.ip);
      setSessionCookie(reply, session.sessionSecret, session.expiresAt, config.secureCookies);
      return reply.status(201).send({ user });
    },
  );

  app.post(
    '/api/auth/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Sign in; sets the session cookie',
        description:
          'Failed tries are throttled per account and address (a few free, then a doubling wait) and per account from all addresses: ' +
          '429 LOGIN_THROTTLED with Retry-After.',
        body: z.object({ email: z.string().max(320), password: z.string().max(200) }),
        response: { 200: z.object({ user: userSchema }) },
      },
    },
    async (request, reply) => {
      const session = await accounts.login(request.body.email, request.body.password, request.ip);
      setSessionCookie(reply, session.sessionSecret, session.expiresAt, config.secureCookies);
      return { user: session.user };
    },
  );

  app.post('/api/auth/logout', { schema: { tags: ['auth'], summary: 'Sign out', response: { 204: z.null() } } }, async (request, reply) => {
    const secret = request.cookies[sessionCookie];
    if (secret) await accounts.logout(secret);
    clearSessionCookie(reply, config.secureCookies);
    return reply.status(204).send(null);
  });

  app.post(
    '/api/auth/password',
    {
      schema: {
        tags: ['auth'],
        summary: 'Change your password',
        description:
          'Needs the current password (a wrong one: 403; tries are throttled like sign-ins). Signs out every browser session of the ' +
          'account, ending their event streams and terminals; a caller signed in with the cookie gets a new one. API tokens stay valid.',
        body: z.object({ currentPassword: z.string().max(200), newPassword }),
        response: { 204: z.null() },
      },
    },
    async (request, reply) => {
      requireUser(request);
      const session = await accounts.changePassword(request.principal!, request.body, request.ip);
      if (session) setSessionCookie(reply, session.sessionSecret, session.expiresAt, config.secureCookies);
      return reply.status(204).send(null);
    },
  );

  app.get('/api/auth/me', { schema: { tags: ['auth'], summary: 'The signed-in user', response: { 200: z.object({ user: userSchema }) } } }, async (request) => ({
    user: requireUser(request),
  }));
}
