import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../core/logger.ts';
import type { ExecProcess, ExitStatus, Sandbox } from '../core/sandbox.ts';

const stderrTailChars = 4096;

/**
 * One running Claude Code CLI in stream-json mode, inside a sandbox. Emits `line` for every parsed
 * stdout JSON object and `exit` once. Writes user turns and control requests to its stdin.
 */
export class ClaudeProcess extends EventEmitter<{ line: [unknown]; exit: [ExitStatus] }> {
  private process: ExecProcess | null = null;
  private stderrTail = '';
  private exitStatus: ExitStatus | null = null;

  constructor(
    private readonly sandbox: Sandbox,
    private readonly argv: string[],
    private readonly env: Record<string, string>,
    private readonly logger: Logger,
  ) {
    super();
  }

  start(): void {
    const child = this.sandbox.exec(this.argv, { env: this.env, stdin: true });
    this.process = child;
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
      if (!line.trim()) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        this.logger.warn({ line: line.slice(0, 200) }, 'claude printed a line that is not JSON');
        return;
      }
      this.emit('line', parsed);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-stderrTailChars);
    });
    child.stdin?.on('error', () => undefined); // writes after exit are answered by the exit event
    void child.exited.then((status) => {
      this.exitStatus = status;
      this.emit('exit', status);
    });
  }

  get exited(): ExitStatus | null {
    return this.exitStatus;
  }

  /** The last lines the CLI wrote to stderr (human-readable warnings and errors). */
  get stderr(): string {
    return this.stderrTail;
  }

  sendUserMessage(text: string): void {
    this.write({ type: 'user', message: { role: 'user', content: text }, parent_tool_use_id: null });
  }

  /** Asks the CLI to stop the running turn; it answers with an interrupted `result` and stays alive. */
  interrupt(): void {
    this.write({ type: 'control_request', request_id: `int_${randomUUID()}`, request: { subtype: 'interrupt' } });
  }

  /** Ends the process: closes stdin so it finishes cleanly, and kills it if it has not exited after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    const child = this.process;
    if (!child || this.exitStatus) return;
    child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await child.exited;
    clearTimeout(timer);
  }

  kill(): void {
    this.process?.kill('SIGKILL');
  }

  private write(message: unknown): void {
    const stdin = this.process?.stdin;
    if (!stdin || this.exitStatus || stdin.writableEnded) return;
    stdin.write(`${JSON.stringify(message)}\n`);
  }
}
