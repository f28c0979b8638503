import { describe, expect, it } from 'vitest';
import { hostileRequestTargets } from '../../test/support/hostile-paths.ts';
import { checkRequestTarget } from './request-path.ts';

describe('checkRequestTarget', () => {
  it('accepts the routes the CLI uses, with their query', () => {
    expect(checkRequestTarget('/v1/messages?beta=true')).toEqual({ path: '/v1/messages', query: '?beta=true' });
    expect(checkRequestTarget('/v1/messages/count_tokens?beta=true')).toEqual({ path: '/v1/messages/count_tokens', query: '?beta=true' });
    expect(checkRequestTarget('/v1/models/claude-sonnet-4-5@20250929')).toEqual({ path: '/v1/models/claude-sonnet-4-5@20250929', query: '' });
    expect(checkRequestTarget('/v1/models?limit=20&after_id=x%20y')).toEqual({ path: '/v1/models', query: '?limit=20&after_id=x%20y' });
    expect(checkRequestTarget('/')).toEqual({ path: '/', query: '' });
  });

  it('accepts segments that only look like dot segments', () => {
    expect(checkRequestTarget('/v1/models/...')).toEqual({ path: '/v1/models/...', query: '' });
    expect(checkRequestTarget('/v1/models/.x')).toEqual({ path: '/v1/models/.x', query: '' });
  });

  it.each(hostileRequestTargets)('refuses %s (%s)', (target, problem) => {
    expect(checkRequestTarget(target)).toEqual({ problem });
  });

  it('refuses a proxy request’s absolute URL and a fragment after the query', () => {
    expect(checkRequestTarget('http://api.anthropic.com/v1/models')).toEqual({ problem: 'not-origin-form' });
    expect(checkRequestTarget('/v1/messages?beta=true#frag')).toEqual({ problem: 'bad-character' });
  });

  it('accepts only paths a WHATWG URL parser leaves as they are, without dot or empty segments', () => {
    // Random targets built from the characters that matter: whatever is accepted must already be canonical.
    const alphabet = ['/', '.', '..', '%', '2e', '2f', '5c', '\\', 'v1', 'models', ';', '?', '#', '@', ':', 'é', '"', ' '];
    let seed = 7;
    const next = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    let accepted = 0;
    for (let index = 0; index < 5_000; index += 1) {
      const parts = Array.from({ length: 1 + (next() % 8) }, () => alphabet[next() % alphabet.length]!);
      const target = `/${parts.join('')}`;
      const checked = checkRequestTarget(target);
      if (!('path' in checked)) continue;
      accepted += 1;
      const parsed = new URL(target, 'http://gateway.invalid');
      expect(parsed.pathname + parsed.search, target).toBe(target);
      expect(checked.path === '/' || checked.path.slice(1).split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..'), target).toBe(true);
      expect(checked.path, target).not.toMatch(/[%\\]/);
    }
    expect(accepted).toBeGreaterThan(30);
  });
});
