import { AppError } from '../core/errors.ts';

/** Bounds the event streams open at once, per user and per conversation. */
export class StreamSlots {
  private readonly perUser = new Map<string, number>();
  private readonly perConversation = new Map<string, number>();

  constructor(private readonly limits: { perUser: number; perConversation: number }) {}

  /** Takes a slot for one stream; returns the function that gives it back (once). Throws TOO_MANY_STREAMS when full. */
  acquire(userId: string, conversationId: string): () => void {
    const userCount = this.perUser.get(userId) ?? 0;
    if (userCount >= this.limits.perUser) {
      throw new AppError('TOO_MANY_STREAMS', `you have ${userCount} event streams open, the most allowed per user (AGENTYARD_EVENT_STREAMS_PER_USER); close one first`, {
        limit: this.limits.perUser,
      });
    }
    const conversationCount = this.perConversation.get(conversationId) ?? 0;
    if (conversationCount >= this.limits.perConversation) {
      throw new AppError(
        'TOO_MANY_STREAMS',
        `this conversation has ${conversationCount} event streams open, the most allowed per conversation (AGENTYARD_EVENT_STREAMS_PER_CONVERSATION); close one first`,
        { limit: this.limits.perConversation },
      );
    }
    this.perUser.set(userId, userCount + 1);
    this.perConversation.set(conversationId, conversationCount + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      decrement(this.perUser, userId);
      decrement(this.perConversation, conversationId);
    };
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const count = (counts.get(key) ?? 1) - 1;
  if (count > 0) counts.set(key, count);
  else counts.delete(key);
}
