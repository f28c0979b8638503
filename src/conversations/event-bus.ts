import { EventEmitter } from 'node:events';
import type { ConversationEvent } from '../core/events.ts';

/** In-process fan-out of persisted events to live subscribers (SSE streams, waiting requests). */
export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(event: ConversationEvent): void {
    this.emitter.emit(event.conversationId, event);
  }

  /** Calls `listener` for each event of the conversation published from now on; returns the unsubscribe function. */
  subscribe(conversationId: string, listener: (event: ConversationEvent) => void): () => void {
    this.emitter.on(conversationId, listener);
    return () => this.emitter.off(conversationId, listener);
  }
}
