import { AppError } from '../core/errors.ts';
import { sandboxPaths } from '../core/sandbox.ts';

/** The unprivileged user every backend runs sandbox processes as. */
export const agentUser = 'agent';

const defaultPath = `${sandboxPaths.bin}:/usr/local/bin:/usr/bin:/bin`;

/**
 * The complete environment of an exec'd process: what was given, plus PATH, HOME and USER when missing.
 * `refuse` names variables a backend must not pass on (e.g. ones that would load code into a root-run launcher).
 */
export function sandboxEnv(given: Record<string, string> = {}, refuse?: { pattern: RegExp; reason: string }): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(given)) {
    if (name === '' || name.includes('=') || name.includes('\0') || typeof value !== 'string' || value.includes('\0')) {
      throw new AppError('BAD_REQUEST', `invalid environment variable: ${name}`);
    }
    if (refuse?.pattern.test(name)) throw new AppError('BAD_REQUEST', `environment variable ${name} is not allowed ${refuse.reason}`);
    env[name] = value;
  }
  env.PATH ??= defaultPath;
  env.HOME ??= sandboxPaths.home;
  env.USER ??= agentUser;
  return env;
}

/** A command line every backend can pass on safely: strings without NUL bytes, and a real first word. */
export function validateArgv(argv: string[]): void {
  if (!Array.isArray(argv) || argv.length === 0) throw new AppError('BAD_REQUEST', 'argv is empty');
  for (const argument of argv) {
    if (typeof argument !== 'string' || argument.includes('\0')) {
      throw new AppError('BAD_REQUEST', 'argv must be strings without NUL bytes');
    }
  }
  if (argv[0] === '') throw new AppError('BAD_REQUEST', 'argv[0] is empty');
  // env(1) would take a first word with "=" as one more variable.
  if (argv[0]!.includes('=')) throw new AppError('BAD_REQUEST', 'argv[0] may not contain "="');
}
