import type { Config } from '../core/config.ts';
import { silentLogger } from '../core/logger.ts';
import type { BackendCheck } from '../core/sandbox.ts';
import { buildCore, hostChecks } from '../platform.ts';
import { print } from './output.ts';

/** `agentyard doctor`: checks what the platform needs on this host and says how to fix each problem. */
export async function doctor(config: Config): Promise<boolean> {
  const { store, sandboxes } = buildCore(config, silentLogger);
  const checks: BackendCheck[] = [];
  checks.push(
    await store.migrate().then(
      (): BackendCheck => ({ name: 'store', ok: true, detail: config.store.kind === 'sqlite' ? config.store.path : 'postgres' }),
      (error: unknown): BackendCheck => ({
        name: 'store',
        ok: false,
        detail: error instanceof Error ? error.message : String(error),
        fix: config.store.kind === 'postgres' ? 'check DATABASE_URL and that PostgreSQL is running' : 'check that AGENTYARD_DATA_DIR is writable',
      }),
    ),
  );
  await store.close();
  checks.push(...(await hostChecks(config, sandboxes)));
  checks.push(
    config.model.credential
      ? { name: 'credentials', ok: true, detail: `${config.model.credential.kind} for ${config.model.upstreamUrl}` }
      : {
          name: 'credentials',
          ok: false,
          detail: 'no model credential configured',
          fix: 'set ANTHROPIC_API_KEY (an Anthropic API key) or CLAUDE_CODE_OAUTH_TOKEN (from `claude setup-token`)',
        },
  );
  for (const check of checks) {
    print(`${check.ok ? 'ok  ' : 'FAIL'}  ${check.name.padEnd(16)} ${check.detail}`);
    if (!check.ok && check.fix) print(`      fix: ${check.fix}`);
  }
  return checks.every((check) => check.ok);
}
