import type { Agent } from '../core/types.ts';

export interface ClaudeCommandOptions {
  agent: Agent;
  /**
   * Continue this Claude session (`--resume`), or start one with this id (`--session-id`). `at`: the assistant message
   * the session is continued from; what came after it (a turn that did not complete) is left out.
   */
  session: { resume: string; at?: string | null } | { create: string };
}

/**
 * The CLI's command line: stream-json in and out, one long-lived process per conversation.
 * The agent runs as an unprivileged user inside its sandbox, so bypassing permission prompts is safe
 * and needs no IS_SANDBOX override.
 */
export function claudeArgs({ agent, session }: ClaudeCommandOptions): string[] {
  const args = [
    '-p',
    '--input-format', 'stream-json',
    '--output-format', 'stream-json',
    '--verbose',
    '--include-partial-messages',
    '--permission-mode', 'bypassPermissions',
    '--model', agent.model,
  ];
  if (agent.instructions.trim()) args.push('--append-system-prompt', agent.instructions);
  // Variadic flags take one value each in the `=` form so that no value is mistaken for another flag's.
  for (const tool of agent.allowedTools) args.push(`--allowedTools=${tool}`);
  for (const tool of agent.disallowedTools) args.push(`--disallowedTools=${tool}`);
  if (agent.maxTurns !== null) args.push('--max-turns', String(agent.maxTurns));
  if ('resume' in session) {
    args.push('--resume', session.resume);
    if (session.at) args.push('--resume-session-at', session.at);
  } else args.push('--session-id', session.create);
  return args;
}

/**
 * The CLI's whole environment inside the sandbox. The only credential is the sandbox's own gateway token.
 * Retries are bounded so that an upstream failure reaches the user in seconds, not minutes.
 */
export function claudeEnv(options: { gatewayUrl: string; gatewayToken: string; maxRetries: number; requestTimeoutMs: number }): Record<string, string> {
  return {
    ANTHROPIC_BASE_URL: options.gatewayUrl,
    ANTHROPIC_API_KEY: options.gatewayToken,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    CLAUDE_CODE_MAX_RETRIES: String(options.maxRetries),
    API_TIMEOUT_MS: String(options.requestTimeoutMs),
    LANG: 'C.UTF-8',
    TERM: 'dumb',
  };
}
