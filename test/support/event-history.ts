import path from 'node:path';
import type { EventData } from '../../src/core/events.ts';
import { createSqliteStore } from '../../src/store/index.ts';

/**
 * Gives a conversation a long history fast: appends `count` message.delta events of `eventBytes` each straight into
 * the platform's SQLite file (as the runner would persist them), next to a server that keeps running.
 * Returns the last sequence number.
 */
export async function seedEventHistory(dataDir: string, conversationId: string, options: { count: number; eventBytes: number }): Promise<number> {
  const store = createSqliteStore({ path: path.join(dataDir, 'agentyard.sqlite') });
  try {
    let last = 0;
    for (let index = 0; index < options.count; index += 1) {
      const data: EventData = {
        type: 'message.delta',
        turnId: 'turn_seeded',
        messageId: 'msg_seeded',
        text: `[${index}]`.padEnd(options.eventBytes, 'x'),
      };
      last = (await store.appendEvent(conversationId, data)).seq;
    }
    return last;
  } finally {
    await store.close();
  }
}
