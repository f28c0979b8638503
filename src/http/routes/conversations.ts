import { z } from 'zod';
import type { Conversation } from '../../core/types.ts';
import { requireUser } from '../auth.ts';
import { conversationSchema, idParams, messageSchema, turnSchema } from '../schemas.ts';
import type { App, AppServices } from '../app.ts';
import { forwardRequest, hereOrAtHolder, holderForwarding, sendHolderAnswer } from '../holder-forwarding.ts';

export const presentConversation = ({ userId: _owner, claudeSessionId: _session, claudeResumeAt: _resumeAt, ...rest }: Conversation): z.infer<typeof conversationSchema> => rest;
const title = z.string().trim().min(1).max(200);

export function registerConversationRoutes(app: App, { conversations, config }: AppServices): void {
  const forwarding = holderForwarding(conversations, config.replica.id);
  app.post(
    '/api/conversations',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Create a conversation with an agent (the built-in default when none is named)',
        body: z.object({ agentId: z.string().max(100).optional(), title: title.optional() }).default({}),
        response: { 201: conversationSchema },
      },
    },
    async (request, reply) => reply.status(201).send(presentConversation(await conversations.create(requireUser(request), request.body))),
  );

  app.get(
    '/api/conversations',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Your conversations, most recent first; `running` is true while a turn runs or waits',
        response: { 200: z.object({ conversations: z.array(conversationSchema.extend({ running: z.boolean() })) }) },
      },
    },
    async (request) => ({
      conversations: (await conversations.list(requireUser(request))).map((conversation) => ({
        ...presentConversation(conversation),
        running: conversations.isRunning(conversation.id),
      })),
    }),
  );

  app.get(
    '/api/conversations/:id',
    {
      schema: {
        tags: ['conversations'],
        summary: 'A conversation with its turns and messages',
        params: idParams,
        response: {
          200: conversationSchema.extend({ running: z.boolean(), turns: z.array(turnSchema), messages: z.array(messageSchema) }),
        },
      },
    },
    async (request) => {
      const detail = await conversations.detail(requireUser(request), request.params.id);
      return {
        ...presentConversation(detail.conversation),
        running: detail.running,
        turns: detail.turns.map(({ conversationId: _parent, ...turn }) => turn),
        messages: detail.messages,
      };
    },
  );

  app.patch(
    '/api/conversations/:id',
    { schema: { tags: ['conversations'], summary: 'Rename a conversation', params: idParams, body: z.object({ title }), response: { 200: conversationSchema } } },
    async (request) => presentConversation(await conversations.rename(requireUser(request), request.params.id, request.body.title)),
  );

  app.delete(
    '/api/conversations/:id',
    { schema: { tags: ['conversations'], summary: 'Delete a conversation, its events and its workspace', params: idParams, response: { 204: z.null() } } },
    async (request, reply) => {
      await conversations.delete(requireUser(request), request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/conversations/:id/messages',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Send a message; answers at once with the turn, which runs after any earlier turn',
        params: idParams,
        body: z.object({ text: z.string() }),
        response: { 202: z.object({ turnId: z.string(), status: z.literal('queued') }) },
      },
    },
    async (request, reply) => {
      const turn = await conversations.send(requireUser(request), request.params.id, request.body.text);
      return reply.status(202).send({ turnId: turn.id, status: 'queued' as const });
    },
  );

  app.post(
    '/api/conversations/:id/interrupt',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Stop the running turn; the conversation goes on afterwards',
        description: 'Any server replica takes it: one that does not run the conversation forwards it, with your credential, to the one that does.',
        params: idParams,
        response: { 200: z.object({ interrupted: z.boolean() }) },
      },
    },
    async (request, reply) => {
      const user = requireUser(request);
      const id = request.params.id;
      // The owner is checked here before the request goes to the replica running the turn, which checks it again.
      await conversations.get(user, id);
      return hereOrAtHolder(
        forwarding,
        request,
        id,
        async () => reply.send({ interrupted: await conversations.interrupt(user, id) }),
        async (holder) => sendHolderAnswer(reply, await forwardRequest(request, holder, config.replica.id)),
      );
    },
  );
}
