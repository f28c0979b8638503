import { z } from 'zod';
import { clearSessionCookie, requireUser, sessionCookie, setSessionCookie } from '../auth.ts';
import { errorResponses, userSchema } from '../schemas.ts';
import type { App, AppServices } from '../server.ts';

const credentials = z.object({
  email: z.email().max(320),
  password: z.string().min(8, 'at least 8 characters').max(200),
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
        response: { 201: z.object({ user: userSchema }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const user = await accounts.register(request.body);
      const session = await accounts.login(request.body.email, request.body.password);
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
        body: z.object({ email: z.string().max(320), password: z.string().max(200) }),
        response: { 200: z.object({ user: userSchema }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const session = await accounts.login(request.body.email, request.body.password);
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

  app.get('/api/auth/me', { schema: { tags: ['auth'], summary: 'The signed-in user', response: { 200: z.object({ user: userSchema }), ...errorResponses } } }, async (request) => ({
    user: requireUser(request),
  }));
}
