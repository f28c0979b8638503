import type { Page } from 'playwright-core';
import type { EventData } from '../../src/core/events.ts';
import type { Store } from '../../src/core/store.ts';

/** Appends `turns` finished turns of 20 events each (queued, started, 16 deltas, completed, ended) to a conversation. */
export async function appendFinishedTurns(store: Store, conversationId: string, turns: number): Promise<void> {
  const append = (data: EventData) => store.appendEvent(conversationId, data);
  for (let turn = 0; turn < turns; turn += 1) {
    const turnId = `turn_bulk${turn}`;
    const messageId = `msg_bulk${turn}`;
    await append({ type: 'turn.queued', turnId, text: `Question ${turn}: explain step ${turn}` });
    await append({ type: 'turn.started', turnId, text: `Question ${turn}: explain step ${turn}` });
    const parts = Array.from({ length: 16 }, (_, index) => `word${index} `);
    for (const part of parts) await append({ type: 'message.delta', turnId, messageId, text: part });
    const answer = `Answer ${turn}: ${parts.join('')}\n\n\`\`\`ts\nconst step${turn} = ${turn};\n\`\`\`\nmarker-${turn}`;
    await append({ type: 'message.completed', turnId, messageId, text: answer });
    await append({ type: 'turn.ended', turnId, status: 'completed', usage: { inputTokens: 100, outputTokens: 20, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 }, costUsd: 0.001, durationMs: 1200 });
  }
}

/** Scrolls the open transcript from the bottom to the top in 40 steps, one per frame; the frame durations in ms. */
export function scrollFrameDurations(page: Page): Promise<number[]> {
  return page.evaluate(async () => {
    const scroller = document.querySelector('.chat-scroll')!;
    const steps = 40;
    const stride = scroller.scrollHeight / steps;
    const durations: number[] = [];
    let last = performance.now();
    for (let step = 0; step < steps; step += 1) {
      scroller.scrollTop = scroller.scrollHeight - stride * (step + 1);
      await new Promise((resolve) => requestAnimationFrame(resolve));
      const now = performance.now();
      durations.push(now - last);
      last = now;
    }
    return durations;
  });
}
