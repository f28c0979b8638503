import { describe, expect, it } from 'vitest';
import { builtinDefaultAgent } from '../agents/agents-service.ts';
import { claudeArgs } from './claude-command.ts';

const agent = builtinDefaultAgent({ model: 'claude-sonnet-5', turnTimeoutSeconds: 60 });

describe('claudeArgs', () => {
  it('starts a session with our id, or resumes one, at a message when one is given', () => {
    expect(claudeArgs({ agent, session: { create: 'session-1' } }).slice(-2)).toEqual(['--session-id', 'session-1']);
    const resumed = claudeArgs({ agent, session: { resume: 'session-1', at: null } });
    expect(resumed.slice(-2)).toEqual(['--resume', 'session-1']);
    expect(resumed).not.toContain('--resume-session-at');
    expect(claudeArgs({ agent, session: { resume: 'session-1', at: 'message-uuid' } }).slice(-4)).toEqual([
      '--resume',
      'session-1',
      '--resume-session-at',
      'message-uuid',
    ]);
  });
});
