import type { Config } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { startPlatform } from '../platform.ts';

/** `agentyard serve`: runs the platform until SIGINT or SIGTERM. */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger({ level: config.logLevel });
  if (!config.model.credential) {
    logger.warn('no model credential: set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN, or turns will fail');
  }
  const platform = await startPlatform(config, logger);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    platform.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
