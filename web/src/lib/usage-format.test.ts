import { describe, expect, it } from 'vitest';
import { formatQuotaAmount, modelOptionLabel, quotaFraction } from './usage-format.ts';

describe('formatQuotaAmount and quotaFraction', () => {
  it('shows each quota in its own unit', () => {
    expect(formatQuotaAmount('costPerMonthUsd', 1.5)).toBe('$1.50');
    expect(formatQuotaAmount('sandboxHoursPerMonth', 0.25)).toBe('0.25 h');
    expect(formatQuotaAmount('tokensPerDay', 1200)).toBe((1200).toLocaleString());
  });

  it('measures the used share of a limit, with no share for no limit and a zero limit used up', () => {
    expect(quotaFraction(50, 200)).toBe(0.25);
    expect(quotaFraction(500, 200)).toBe(1);
    expect(quotaFraction(5, null)).toBeNull();
    expect(quotaFraction(0, 0)).toBe(1);
  });
});

describe('modelOptionLabel', () => {
  it('names the model with its price, or alone when it has none', () => {
    expect(modelOptionLabel({ id: 'claude-haiku-4-5', price: { input: 1, output: 5, cacheWrite: 1.25, cacheRead: 0.1 } })).toBe('claude-haiku-4-5 · $1 / $5 per M tokens in / out');
    expect(modelOptionLabel({ id: 'my-model', price: null })).toBe('my-model');
  });
});
