import { z } from 'zod';
import { requireUser } from '../auth.ts';
import { idParams, tokenSchema } from '../schemas.ts';
import type { App, AppServices } from '../app.ts';

export function registerTokenRoutes(app: App, { accounts }: AppServices): void {
  app.post(
    '/api/tokens',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Create an API token; the token is shown only in this answer',
        body: z.object({ name: z.string().trim().min(1).max(100), expiresInDays: z.number().int().min(1).max(3650).optional() }),
        response: { 201: tokenSchema.extend({ token: z.string() }) },
      },
    },
    async (request, reply) => {
      const user = requireUser(request);
      const { token, record } = await accounts.createToken(user.id, request.body);
      const { userId: _owner, ...listed } = record;
      return reply.status(201).send({ ...listed, token });
    },
  );

  app.get('/api/tokens', { schema: { tags: ['tokens'], summary: 'Your API tokens (without their secrets)', response: { 200: z.object({ tokens: z.array(tokenSchema) }) } } }, async (request) => {
    const user = requireUser(request);
    const tokens = await accounts.listTokens(user.id);
    return { tokens: tokens.map(({ userId: _owner, ...listed }) => listed) };
  });

  app.delete('/api/tokens/:id', { schema: { tags: ['tokens'], summary: 'Revoke an API token', params: idParams, response: { 204: z.null() } } }, async (request, reply) => {
    const user = requireUser(request);
    await accounts.revokeToken(user.id, request.params.id);
    return reply.status(204).send(null);
  });
}
