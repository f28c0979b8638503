import { pino, type Logger } from 'pino';

export type { Logger };

/** The JSON logger; secrets are redacted wherever a known field carries one. */
export function createLogger(options: { level: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      level: options.level,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers["x-api-key"]',
          '*.password',
          '*.token',
          '*.apiKey',
        ],
        censor: '[redacted]',
      },
    },
    options.destination ?? process.stdout,
  );
}

/** A logger that writes nothing: the default for optional collaborators and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
