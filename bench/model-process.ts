import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The scripted model running in its own process (bench/scripted-model-process.ts). */
export interface ModelProcess {
  url: string;
  pid: number;
  close(): Promise<void>;
}

/** Starts bench/scripted-model-process.ts and waits until it listens. */
export async function startModelProcess(): Promise<ModelProcess> {
  const script = fileURLToPath(new URL('./scripted-model-process.ts', import.meta.url));
  // The same node and loader flags as this process (tsx), and an explicit environment.
  const child = spawn(process.execPath, [...process.execArgv.filter((flag) => flag !== '--expose-gc'), script], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir() },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`the scripted model process exited with ${code} before listening`)));
  });
  return {
    url,
    pid: child.pid!,
    async close() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
