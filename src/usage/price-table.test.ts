import { describe, expect, it } from 'vitest';
import { createPriceTable, defaultPrices, PriceTable, totalTokens } from './price-table.ts';

const usage = { inputTokens: 1_000_000, outputTokens: 100_000, cacheCreationInputTokens: 10_000, cacheReadInputTokens: 200_000 };

describe('PriceTable', () => {
  it('prices each kind of token per million', () => {
    const table = new PriceTable({ 'model-a': { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 } });
    expect(table.cost('model-a', usage)).toBeCloseTo(3 + 1.5 + 0.0375 + 0.06, 10);
  });

  it('prefers an exact id, then the longest matching prefix, then *', () => {
    const table = new PriceTable({
      '*': { input: 100, output: 0, cacheWrite: 0, cacheRead: 0 },
      'claude-opus-*': { input: 5, output: 0, cacheWrite: 0, cacheRead: 0 },
      'claude-opus-4-1*': { input: 15, output: 0, cacheWrite: 0, cacheRead: 0 },
      'claude-opus-4-1-special': { input: 1, output: 0, cacheWrite: 0, cacheRead: 0 },
    });
    expect(table.priceOf('claude-opus-4-1-special')?.input).toBe(1);
    expect(table.priceOf('claude-opus-4-1-20250805')?.input).toBe(15);
    expect(table.priceOf('claude-opus-4-8')?.input).toBe(5);
    expect(table.priceOf('something-else')?.input).toBe(100);
  });

  it('costs nothing for a model no entry matches', () => {
    expect(new PriceTable({ 'a*': { input: 1, output: 1, cacheWrite: 1, cacheRead: 1 } }).cost('b', usage)).toBe(0);
  });

  it('uses the built-in table unless one is configured, which replaces it', () => {
    expect(createPriceTable(null).priceOf('claude-sonnet-5')).toEqual(defaultPrices['claude-sonnet-*']);
    expect(createPriceTable(null).priceOf('claude-opus-4-8')).toEqual({ input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 });
    expect(createPriceTable({ x: { input: 1, output: 1, cacheWrite: 1, cacheRead: 1 } }).priceOf('claude-sonnet-5')).toBeNull();
  });

  it('counts every kind of token toward the total', () => {
    expect(totalTokens(usage)).toBe(1_310_000);
  });
});
