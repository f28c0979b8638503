import type { Config } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { raiseOpenFileLimit } from '../gateway/descriptor-budget.ts';
import { startPlatform } from '../platform.ts';

/** `agentyard serve`: runs the platform until SIGINT or SIGTERM. */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger({ level: config.logLevel });
  if (!config.model.credential) {
    logger.warn('no model credential: set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN, or turns will fail');
  }
  // Before the gateway sizes its connection budget from the limit (docs/decisions/0010-descriptor-budget.md).
  const descriptors = await raiseOpenFileLimit();
  if (descriptors.error) logger.warn({ limit: descriptors.limit, error: descriptors.error }, 'could not raise the open-file limit to its hard limit');
  else logger.info({ limit: descriptors.limit, raised: descriptors.raised }, 'open-file limit');
  const platform = await startPlatform(config, logger);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Hands conversations over to the other replicas first (running turns get AGENTYARD_DRAIN_SECONDS).
    platform
      .drain()
      .catch((error: unknown) => logger.error({ err: error }, 'drain failed'))
      .then(() => platform.close())
      .then(
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
