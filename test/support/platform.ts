import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/core/config.ts';
import { createLogger, silentLogger, type Logger } from '../../src/core/logger.ts';
import { startPlatform, type Platform } from '../../src/platform.ts';
import { ApiClient } from './api-client.ts';
import { startScriptedModel, type ScriptedModel } from './scripted-model.ts';
import { removeDataDir } from './data-dir.ts';
import { testConfiguration, testDatabaseFor } from './test-configuration.ts';

/** The platform credential used in tests: assertions check it reaches the model and nothing else. */
export const platformSecret = 'sk-ant-api03-PLATFORM-SECRET-do-not-leak-0123456789';

export interface TestPlatform {
  platform: Platform;
  model: ScriptedModel;
  dataDir: string;
  api: ApiClient;
  /** Host path of a conversation's workspace (the local sandbox's layout). */
  workspaceDir(conversationId: string): string;
  close(): Promise<void>;
}

/**
 * A real platform in this process: real server on port 0, the real CLI, and a scripted model behind the gateway.
 * The store and the sandbox backend come from the test configuration (AGENTYARD_TEST_STORE, AGENTYARD_TEST_SANDBOX,
 * AGENTYARD_TEST_DOCKER_RUNTIME; by default SQLite in a temp dir and the local bubblewrap sandbox); a test's own
 * `env` overrides them.
 */
export async function startTestPlatform(
  options: { env?: Record<string, string>; model?: ScriptedModel; dataDir?: string; logger?: Logger } = {},
): Promise<TestPlatform> {
  const model = options.model ?? (await startScriptedModel());
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'agentyard-test-')));
  const configured = testConfiguration();
  const database = configured.store === 'postgres' ? await testDatabaseFor(dataDir) : null;
  const config = loadConfig({
    env: {
      ...configured.env,
      ...(database ? { DATABASE_URL: database } : {}),
      PORT: '0',
      AGENTYARD_DATA_DIR: dataDir,
      ANTHROPIC_BASE_URL: model.url,
      ANTHROPIC_API_KEY: platformSecret,
      AGENTYARD_MODEL_MAX_RETRIES: '0',
      AGENTYARD_DEFAULT_MODEL: 'claude-sonnet-5',
      ...options.env,
    },
  });
  const logger = options.logger ?? (process.env.AGENTYARD_TEST_LOG ? createLogger({ level: process.env.AGENTYARD_TEST_LOG }) : silentLogger);
  const platform = await startPlatform(config, logger);
  return {
    platform,
    model,
    dataDir,
    api: new ApiClient(platform.url),
    // Both backends keep a conversation's workspace on the host at the same place.
    workspaceDir: (conversationId) => path.join(dataDir, 'workspaces', conversationId, 'workspace'),
    async close() {
      await platform.close();
      if (!options.model) await model.close();
      if (!options.dataDir) await removeDataDir(dataDir);
    },
  };
}
