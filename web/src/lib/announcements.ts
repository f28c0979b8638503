import type { ConversationEvent } from '../api/types.ts';

/** A message's Markdown as a screen reader should say it: no fences, emphasis marks or heading hashes. */
export function spokenText(markdown: string): string {
  return markdown
    .split('\n')
    .filter((line) => !/^\s*(```|~~~)/.test(line))
    .map((line) => line.replace(/^\s{0,3}#{1,6}\s+/, '').replace(/(\*\*|__|`)/g, ''))
    .join('\n')
    .trim();
}

const endings = { completed: 'Turn finished', interrupted: 'Turn stopped', timed_out: 'Turn timed out', failed: 'Turn failed' } as const;

/**
 * Turns conversation events into what a screen reader announces: status changes and finished messages, never the
 * streamed deltas. An error is announced once, even when the turn's end repeats it.
 */
export class Announcer {
  private readonly spoken = new Set<string>();

  take(events: ConversationEvent[]): string[] {
    const out: string[] = [];
    const error = (turnId: string | null, code: string, message: string): void => {
      const key = `${turnId ?? ''}\n${code}\n${message}`;
      if (this.spoken.has(key)) return;
      this.spoken.add(key);
      out.push(`Error: ${message}`);
    };
    for (const event of events) {
      switch (event.type) {
        case 'turn.started':
          out.push('Agent is working');
          break;
        case 'tool.started':
          out.push(`Running ${event.name}`);
          break;
        case 'message.completed': {
          const text = spokenText(event.text);
          if (text) out.push(text);
          break;
        }
        case 'turn.ended':
          if (event.error) error(event.turnId, event.error.code, event.error.message);
          out.push(endings[event.status]);
          break;
        case 'error':
          error(event.turnId, event.code, event.message);
          break;
        case 'turn.queued':
        case 'message.delta':
        case 'tool.ended':
          break;
      }
    }
    return out;
  }
}
