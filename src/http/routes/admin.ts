import { z } from 'zod';
import { agentLimitsSchema } from '../../agents/agent-schema.ts';
import { requireAdmin } from '../auth.ts';
import { idParams, userSchema } from '../schemas.ts';
import type { App, AppServices } from '../app.ts';

export function registerAdminRoutes(app: App, { accounts, agents, conversations, replicas }: AppServices): void {
  app.get('/api/admin/users', { schema: { tags: ['admin'], summary: 'All users', response: { 200: z.object({ users: z.array(userSchema) }) } } }, async (request) => {
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
        response: { 200: z.object({ user: userSchema }) },
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
        response: { 201: z.object({ code: z.string(), expiresAt: z.string(), email: z.string().nullable() }) },
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
        },
      },
    },
    async (request) => {
      requireAdmin(request);
      return { conversations: await conversations.activityDetails() };
    },
  );

  app.get(
    '/api/admin/replicas',
    {
      schema: {
        tags: ['admin'],
        summary: 'The server replicas sharing this database: version, heartbeat, and how many conversations each holds',
        response: {
          200: z.object({
            replicas: z.array(
              z.object({
                id: z.string(),
                version: z.string(),
                url: z.string().nullable(),
                hostname: z.string(),
                pid: z.number().int(),
                startedAt: z.string(),
                heartbeatAt: z.string(),
                draining: z.boolean().describe('shutting down: it takes no new turns'),
                live: z.boolean().describe('its heartbeat is more recent than the lease time (AGENTYARD_LEASE_SECONDS)'),
                leases: z.number().int().describe('conversations it holds now'),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      requireAdmin(request);
      return { replicas: await replicas.list() };
    },
  );

  const ceilingsAnswer = z.object({
    ceilings: agentLimitsSchema.describe('the highest limits an agent may have; agents over them are refused, older ones run clamped'),
    defaults: agentLimitsSchema.describe('the configured ceilings (AGENTYARD_AGENT_MAX_MEMORY_MB, …_CPUS, …_TURN_SECONDS)'),
    source: z.enum(['configuration', 'administrator']),
  });
  const ceilingsState = (): z.infer<typeof ceilingsAnswer> => ({ ceilings: agents.ceilings.values, defaults: agents.ceilings.defaults, source: agents.ceilings.source });

  app.get(
    '/api/admin/agent-limits',
    { schema: { tags: ['admin'], summary: 'The ceilings of agents’ memory, CPUs and turn time', response: { 200: ceilingsAnswer } } },
    async (request) => {
      requireAdmin(request);
      return ceilingsState();
    },
  );

  app.put(
    '/api/admin/agent-limits',
    {
      schema: {
        tags: ['admin'],
        summary: 'Set the ceilings of agents’ limits (kept across restarts; they win over the configured ones)',
        body: agentLimitsSchema,
        response: { 200: ceilingsAnswer },
      },
    },
    async (request) => {
      requireAdmin(request);
      await agents.ceilings.set(request.body);
      return ceilingsState();
    },
  );

  app.delete(
    '/api/admin/agent-limits',
    { schema: { tags: ['admin'], summary: 'Go back to the configured ceilings of agents’ limits', response: { 200: ceilingsAnswer } } },
    async (request) => {
      requireAdmin(request);
      await agents.ceilings.reset();
      return ceilingsState();
    },
  );
}
