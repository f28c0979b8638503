import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '../../src/core/logger.ts';

/** A logger at trace level whose output the test can read back, as text and as parsed JSON lines. */
export interface CapturedLog {
  logger: Logger;
  text(): string;
  entries(): Array<Record<string, unknown>>;
}

export function captureLog(): CapturedLog {
  let text = '';
  const destination = new PassThrough();
  destination.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return {
    logger: createLogger({ level: 'trace', destination }),
    text: () => text,
    entries: () =>
      text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
