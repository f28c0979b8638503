import { ConfigError, loadConfig } from './core/config.ts';
import { createUser } from './cli/create-user.ts';
import { doctor } from './cli/doctor.ts';
import { print, printError } from './cli/output.ts';
import { sandboxImage } from './cli/sandbox-image.ts';
import { serve } from './cli/serve.ts';

const usage = `usage: agentyard <command> [options]

commands:
  serve [--host H] [--port P] [--data-dir D]   start the platform (default http://127.0.0.1:8080)
  create-user --email E --password P [--admin] create an account
  doctor                                        check this host and say how to fix problems
  sandbox-image [--force] [--tag IMAGE]         build the Docker sandbox image offline (AGENTYARD_SANDBOX_IMAGE)`;

/** The entry point: the only place (with src/cli) that reads process.env and argv. */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const env = process.env;
  switch (command) {
    case 'serve':
      await serve(loadConfig({ env, argv: rest }));
      return -1; // keeps running
    case 'create-user':
      await createUser(loadConfig({ env }), rest, env);
      return 0;
    case 'doctor':
      return (await doctor(loadConfig({ env }))) ? 0 : 1;
    case 'sandbox-image':
      await sandboxImage(loadConfig({ env }), rest, env);
      return 0;
    case undefined:
    case 'help':
    case '--help':
      print(usage);
      return command ? 0 : 2;
    default:
      printError(`unknown command ${command}\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    printError(error instanceof ConfigError ? error.message : `error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
