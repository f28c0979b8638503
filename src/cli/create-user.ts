import { parseArgs } from 'node:util';
import type { Config } from '../core/config.ts';
import { silentLogger } from '../core/logger.ts';
import { buildCore } from '../platform.ts';
import { print } from './output.ts';

/** `agentyard create-user --email E [--password P | AGENTYARD_PASSWORD] [--admin]` */
export async function createUser(config: Config, argv: string[], env: Record<string, string | undefined>): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { email: { type: 'string' }, password: { type: 'string' }, admin: { type: 'boolean', default: false } },
    strict: true,
  });
  const password = values.password ?? env.AGENTYARD_PASSWORD;
  if (!values.email || !password) throw new Error('usage: create-user --email EMAIL --password PASSWORD [--admin] (or AGENTYARD_PASSWORD)');
  if (password.length < 8) throw new Error('the password needs at least 8 characters');
  const { store, accounts } = buildCore(config, silentLogger);
  try {
    await store.migrate();
    const user = await accounts.createUser({ email: values.email, password, role: values.admin ? 'admin' : 'user' });
    print(`created ${user.role} ${user.email} (${user.id})`);
  } finally {
    await store.close();
  }
}
