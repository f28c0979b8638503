/**
 * Probes run inside a conversation's sandbox through the whole platform: a message goes to the real
 * server, the real CLI asks the scripted model what to do, the model answers with a Bash tool call
 * carrying the probe's command, and the command's output comes back in the conversation's
 * `tool.ended` event.
 *
 * Probe commands should print explicit markers (`echo RESULT=$?`) so that a probe that did not run
 * can never pass for one that ran and found nothing: read them with `marker()` / `markers()`.
 */
import { expect } from 'vitest';
import { type ApiClient, type StreamedEvent, untilTurnEnded } from './api-client.ts';
import { text, toolUse, type ScriptedModel } from './scripted-model.ts';

/** What a probe's turn produced. */
export interface ProbeResult {
  turnId: string;
  command: string;
  /** The Bash tool's output as streamed in `tool.ended` (stdout and stderr, as the CLI reports them). */
  output: string;
  /** Whether the CLI reported the tool call as failed (a non-zero exit status does that). */
  isError: boolean;
  /** Every event of the probe's turn, in order. */
  events: StreamedEvent[];
}

export interface ProbeOptions {
  /** How long to wait for the turn to end (default 60 s). */
  timeoutMs?: number;
  /** The Bash tool's own timeout for the command, in ms (default: the CLI's default of 2 minutes). */
  commandTimeoutMs?: number;
}

const promptPrefix = 'SANDBOX_PROBE#';
const finalText = 'Probe finished.';

/**
 * Runs Bash probes in sandboxes. `install()` replaces the model's script with one that answers probe
 * prompts with the probe's Bash call and hands every other prompt to the default keyword script.
 */
export class SandboxProber {
  private readonly commands = new Map<string, string>();
  private next = 0;

  constructor(readonly model: ScriptedModel) {}

  install(): void {
    this.model.setScript((request, context) => {
      const match = new RegExp(`${promptPrefix}(\\d+)`).exec(request.lastUserText);
      const command = match ? this.commands.get(match[1]!) : undefined;
      if (command === undefined) return context.defaultScript(request, context);
      const input: Record<string, unknown> = { command, description: 'Sandbox probe' };
      const timeout = /timeout=(\d+)/.exec(request.lastUserText)?.[1];
      if (timeout) input.timeout = Number(timeout);
      return request.toolResults === 0 ? toolUse('Bash', input, { text: 'Running the probe.' }) : text(finalText);
    });
  }

  /** Sends a probe message to the conversation and waits for its turn to end; fails unless the Bash call ran. */
  async run(client: ApiClient, conversationId: string, command: string, options: ProbeOptions = {}): Promise<ProbeResult> {
    const { turnId, events, ended } = await this.turn(client, conversationId, command, options);
    expect(ended, 'the probe turn should complete').toMatchObject({ status: 'completed' });
    const started = events.filter((event) => event.event === 'tool.started');
    expect(started.map((event) => [event.data.name, event.data.input.command])).toEqual([['Bash', command]]);
    const toolEnded = events.find((event) => event.event === 'tool.ended' && event.data.toolUseId === started[0]!.data.toolUseId);
    expect(toolEnded, 'the probe’s Bash call should have a result').toBeDefined();
    return { turnId, command, output: String(toolEnded!.data.output), isError: toolEnded!.data.isError === true, events };
  }

  /**
   * Sends a probe message and waits for its turn to end, however it ends (for probes that may take the agent down):
   * the turn's events and its `turn.ended` data.
   */
  async turn(client: ApiClient, conversationId: string, command: string, options: ProbeOptions = {}): Promise<{ turnId: string; events: StreamedEvent[]; ended: any }> {
    const key = String(this.next++);
    this.commands.set(key, command);
    const prompt = `${promptPrefix}${key}${options.commandTimeoutMs ? ` timeout=${options.commandTimeoutMs}` : ''}`;
    const sent = await client.request('POST', `/api/conversations/${conversationId}/messages`, { text: prompt });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    const turnId: string = sent.body.turnId;
    const all = await client.readEvents(conversationId, { until: untilTurnEnded(turnId), timeoutMs: options.timeoutMs ?? 60_000 });
    const events = all.filter((event) => event.data?.turnId === turnId);
    return { turnId, events, ended: events.find((event) => event.event === 'turn.ended')?.data };
  }
}

export function createSandboxProber(model: ScriptedModel): SandboxProber {
  return new SandboxProber(model);
}

/** Every `NAME=value` line of a probe's output (the last one wins). */
export function markers(output: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) found[match[1]!] = match[2]!;
  }
  return found;
}

/** The value of one marker; fails the test when the probe never printed it (so it did not run to that point). */
export function marker(output: string, name: string): string {
  const value = markers(output)[name];
  expect(value, `probe marker ${name} missing from output:\n${output}`).toBeDefined();
  return value!;
}

/** Single-quotes a value for sh. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * A shell assignment that gives `name` the value without the value appearing in the probe's text.
 * The probe's command is recorded inside the sandbox (the CLI's transcript under HOME, the shell's
 * /proc/<pid>/cmdline), so a probe that searched for a literal value would find its own command.
 */
export function hiddenAssignment(name: string, value: string): string {
  return `${name}=$(printf %s ${shellQuote(Buffer.from(value, 'utf8').toString('base64'))} | base64 -d)`;
}

/** Decodes a value a probe printed as base64 (see hiddenAssignment for why probes avoid printing it plainly). */
export function fromBase64(value: string): string {
  return Buffer.from(value, 'base64').toString('utf8');
}
