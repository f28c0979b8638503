import { newId } from '../../src/core/ids.ts';
import type { Store } from '../../src/core/store.ts';

/** A user with an agent of their own and a conversation: what most records of the store hang from. */
export async function conversationFixture(store: Store): Promise<{ userId: string; agentId: string; conversationId: string }> {
  const at = '2025-06-01T00:00:00.000Z';
  const user = await store.createUser({ id: newId('usr'), email: `${newId('u')}@example.com`, passwordHash: 'h', role: 'user' });
  const agent = await store.createAgent({
    id: newId('agt'),
    ownerId: user.id,
    name: 'A',
    description: '',
    instructions: '',
    model: 'm',
    allowedTools: [],
    disallowedTools: [],
    maxTurns: null,
    limits: { memoryMb: 512, cpus: 1, turnTimeoutSeconds: 60 },
    egressDomains: [],
    sandboxRuntime: 'default',
    createdAt: at,
    updatedAt: at,
  });
  const conversation = await store.createConversation({ id: newId('conv'), userId: user.id, agentId: agent.id, title: 't' });
  return { userId: user.id, agentId: agent.id, conversationId: conversation.id };
}
