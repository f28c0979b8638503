import { z } from 'zod';
import { agentDefinitionSchema, agentLimitsSchema, agentPatchSchema } from '../../agents/agent-schema.ts';
import type { Agent } from '../../core/types.ts';
import { requireUser } from '../auth.ts';
import { agentSchema, idParams } from '../schemas.ts';
import type { App, AppServices } from '../app.ts';

const present = (agent: Agent): z.infer<typeof agentSchema> => ({ ...agent, builtin: agent.ownerId === null });

export function registerAgentRoutes(app: App, { agents }: AppServices): void {
  app.get('/api/agents', { schema: { tags: ['agents'], summary: 'Your agents and the built-in ones', response: { 200: z.object({ agents: z.array(agentSchema) }) } } }, async (request) => {
    const list = await agents.list(requireUser(request));
    return { agents: list.map(present) };
  });

  app.get(
    '/api/agent-limits',
    {
      schema: {
        tags: ['agents'],
        summary: 'The highest limits an agent may have here (set by administrators)',
        response: { 200: z.object({ ceilings: agentLimitsSchema }) },
      },
    },
    async (request) => {
      requireUser(request);
      return { ceilings: agents.ceilings.values };
    },
  );

  app.post(
    '/api/agents',
    { schema: { tags: ['agents'], summary: 'Create an agent', body: agentDefinitionSchema, response: { 201: agentSchema } } },
    async (request, reply) => reply.status(201).send(present(await agents.create(requireUser(request), request.body))),
  );

  app.get('/api/agents/:id', { schema: { tags: ['agents'], summary: 'Read an agent', params: idParams, response: { 200: agentSchema } } }, async (request) =>
    present(await agents.get(requireUser(request), request.params.id)),
  );

  app.patch(
    '/api/agents/:id',
    { schema: { tags: ['agents'], summary: 'Update your agent', params: idParams, body: agentPatchSchema, response: { 200: agentSchema } } },
    async (request) => present(await agents.update(requireUser(request), request.params.id, request.body)),
  );

  app.delete('/api/agents/:id', { schema: { tags: ['agents'], summary: 'Delete your agent', params: idParams, response: { 204: z.null() } } }, async (request, reply) => {
    await agents.delete(requireUser(request), request.params.id);
    return reply.status(204).send(null);
  });
}
