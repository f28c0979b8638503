import { z } from 'zod';
import { requireAdmin } from '../auth.ts';
import { errorResponses, idParams, userSchema } from '../schemas.ts';
import type { App, AppServices } from '../server.ts';

export function registerAdminRoutes(app: App, { accounts, conversations }: AppServices): void {
  app.get('/api/admin/users', { schema: { tags: ['admin'], summary: 'All users', response: { 200: z.object({ users: z.array(userSchema) }), ...errorResponses } } }, async (request) => {
    requireAdmin(request);
    return { users: await accounts.listUsers() };
  });

  app.patch(
    '/api/admin/users/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Change a user’s role or disable them',
        params: idParams,
        body: z.object({ role: z.enum(['admin', 'user']).optional(), disabled: z.boolean().optional() }),
        response: { 200: z.object({ user: userSchema }), ...errorResponses },
      },
    },
    async (request) => ({ user: await accounts.updateUser(requireAdmin(request), request.params.id, request.body) }),
  );

  app.post(
    '/api/admin/invites',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create an invite code for one registration (AGENTYARD_REGISTRATION=invite)',
        body: z.object({ email: z.email().optional() }).default({}),
        response: { 201: z.object({ code: z.string(), expiresAt: z.string(), email: z.string().nullable() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { code, invite } = await accounts.createInvite(requireAdmin(request), request.body.email ?? null);
      return reply.status(201).send({ code, expiresAt: invite.expiresAt, email: invite.email });
    },
  );

  app.get(
    '/api/admin/activity',
    {
      schema: {
        tags: ['admin'],
        summary: 'Conversations with a live agent right now, with their owner and title',
        response: {
          200: z.object({
            conversations: z.array(
              z.object({
                conversationId: z.string(),
                busy: z.boolean(),
                live: z.boolean(),
                paused: z.boolean(),
                title: z.string().nullable(),
                agentId: z.string().nullable(),
                userId: z.string().nullable(),
                userEmail: z.string().nullable(),
              }),
            ),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      requireAdmin(request);
      return { conversations: await conversations.activityDetails() };
    },
  );
}
