import { z } from 'zod';
import { notFound } from '../../core/errors.ts';
import { requireUser } from '../auth.ts';
import type { App, AppServices } from '../app.ts';

const infoSchema = z.object({ kind: z.enum(['api-key', 'oauth-token']), createdAt: z.string(), updatedAt: z.string() });

export function registerCredentialRoutes(app: App, { credentials }: AppServices): void {
  app.get(
    '/api/credentials',
    {
      schema: {
        tags: ['credentials'],
        summary: 'Whether you have your own model credential (never its value)',
        response: { 200: z.object({ model: infoSchema.nullable(), canStore: z.boolean() }) },
      },
    },
    async (request) => {
      const user = requireUser(request);
      return { model: await credentials.info(user.id), canStore: credentials.enabled };
    },
  );

  app.put(
    '/api/credentials/model',
    {
      schema: {
        tags: ['credentials'],
        summary: 'Store or rotate your own Anthropic API key or Claude OAuth token',
        description:
          'Kept encrypted (AES-256-GCM) and used for your turns instead of the platform’s credential, from the next model request on. ' +
          'It is never returned, logged or given to a sandbox.',
        body: z.object({
          kind: z.enum(['api-key', 'oauth-token']),
          value: z.string().min(8).max(1000).regex(/^[\x21-\x7e]+$/, 'printable characters without spaces'),
        }),
        response: { 200: infoSchema },
      },
    },
    async (request) => {
      const user = requireUser(request);
      return credentials.put(user.id, { kind: request.body.kind, value: request.body.value });
    },
  );

  app.delete(
    '/api/credentials/model',
    { schema: { tags: ['credentials'], summary: 'Forget your own credential: the platform’s is used again', response: { 204: z.null() } } },
    async (request, reply) => {
      const user = requireUser(request);
      if (!(await credentials.delete(user.id))) throw notFound('credential');
      return reply.status(204).send(null);
    },
  );
}
