import { z } from 'zod';
import { egressDomainsSchema } from '../../agents/agent-schema.ts';
import { requireAdmin, requireUser } from '../auth.ts';
import { idParams } from '../schemas.ts';
import type { App, AppServices } from '../app.ts';

const egressSchema = z.object({
  id: z.string(),
  sandboxId: z.string(),
  host: z.string(),
  port: z.number().int(),
  address: z.string().nullable(),
  decision: z.enum(['allowed', 'denied', 'failed']),
  reason: z.string().nullable().describe('ip-literal, not-allowed, private-address, sni-mismatch, connection-limit, unreachable, …'),
  createdAt: z.string(),
});

const agentEgressSchema = z.object({
  agentId: z.string(),
  name: z.string(),
  ownerId: z.string().nullable(),
  ownerEmail: z.string().nullable(),
  egressDomains: z.array(z.string()),
  updatedAt: z.string(),
});

export function registerEgressRoutes(app: App, { conversations, egress }: AppServices): void {
  app.get(
    '/api/admin/egress',
    {
      schema: {
        tags: ['admin'],
        summary: 'Which agents may reach which domains (every agent with ?all=true)',
        querystring: z.object({ all: z.enum(['true', 'false']).default('false') }),
        response: { 200: z.object({ agents: z.array(agentEgressSchema) }) },
      },
    },
    async (request) => {
      requireAdmin(request);
      return { agents: await egress.list({ all: request.query.all === 'true' }) };
    },
  );

  app.put(
    '/api/admin/agents/:id/egress',
    {
      schema: {
        tags: ['admin'],
        summary: 'Set any agent’s egress domains (an empty list: no egress); applies from its next turn',
        params: idParams,
        body: z.object({ egressDomains: egressDomainsSchema }),
        response: { 200: agentEgressSchema },
      },
    },
    async (request) => {
      requireAdmin(request);
      return egress.set(request.params.id, request.body.egressDomains);
    },
  );

  app.get(
    '/api/conversations/:id/egress',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Every network connection the conversation’s sandboxes tried through the egress proxy, allowed or denied',
        params: idParams,
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(10_000).default(1000) }),
        response: { 200: z.object({ connections: z.array(egressSchema) }) },
      },
    },
    async (request) => {
      const records = await conversations.egressLog(requireUser(request), request.params.id, request.query.limit);
      return { connections: records.map(({ conversationId: _conversation, userId: _user, ...record }) => record) };
    },
  );
}
