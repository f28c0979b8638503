import type { ModelPrice } from '../core/config.ts';
import type { TokenUsage } from '../core/types.ts';

export type { ModelPrice } from '../core/config.ts';

/**
 * The built-in prices, USD per million tokens (the public list prices of each family; 5-minute cache writes).
 * Keys are model ids or `prefix*` patterns; the longest matching pattern wins and `*` matches any model.
 */
export const defaultPrices: Record<string, ModelPrice> = {
  'claude-opus-4-0*': { input: 15, output: 75, cacheWrite: 18.75, cacheRead: 1.5 },
  'claude-opus-4-1*': { input: 15, output: 75, cacheWrite: 18.75, cacheRead: 1.5 },
  'claude-opus-4-2*': { input: 15, output: 75, cacheWrite: 18.75, cacheRead: 1.5 },
  'claude-opus-4*': { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 },
  'claude-opus-*': { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 },
  'claude-sonnet-*': { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 },
  'claude-3-7-sonnet*': { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 },
  'claude-3-5-sonnet*': { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 },
  'claude-haiku-*': { input: 1, output: 5, cacheWrite: 1.25, cacheRead: 0.1 },
  'claude-3-5-haiku*': { input: 0.8, output: 4, cacheWrite: 1, cacheRead: 0.08 },
  // Unknown models are priced like the mid-range family rather than as free.
  '*': { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 },
};

/** Current model ids offered when choosing an agent's model, besides the installation's default and the table's exact ids. */
export const suggestedModels = ['claude-opus-4-5', 'claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-opus-4-1'];

/** Estimates what model usage cost, from a table of prices per model. */
export class PriceTable {
  private readonly exact = new Map<string, ModelPrice>();
  /** `prefix*` patterns, longest prefix first. */
  private readonly patterns: Array<[string, ModelPrice]>;
  private readonly resolved = new Map<string, ModelPrice | null>();

  constructor(prices: Record<string, ModelPrice>) {
    const patterns: Array<[string, ModelPrice]> = [];
    for (const [key, price] of Object.entries(prices)) {
      if (key.endsWith('*')) patterns.push([key.slice(0, -1), price]);
      else this.exact.set(key, price);
    }
    this.patterns = patterns.sort((a, b) => b[0].length - a[0].length);
  }

  /** The price of a model, or null when no entry (not even `*`) matches. */
  priceOf(model: string): ModelPrice | null {
    let price = this.resolved.get(model);
    if (price === undefined) {
      price = this.exact.get(model) ?? this.patterns.find(([prefix]) => model.startsWith(prefix))?.[1] ?? null;
      if (this.resolved.size < 10_000) this.resolved.set(model, price);
    }
    return price;
  }

  /** Estimated cost in USD (0 for a model without a price). */
  cost(model: string, usage: TokenUsage): number {
    const price = this.priceOf(model);
    if (!price) return 0;
    return (
      (usage.inputTokens * price.input +
        usage.outputTokens * price.output +
        usage.cacheCreationInputTokens * price.cacheWrite +
        usage.cacheReadInputTokens * price.cacheRead) /
      1_000_000
    );
  }
}

/**
 * The models to choose from: the default model first, then the table's exact model ids, then the suggested ids that
 * the table prices with an entry of their own (not only the catch-all `*`), each with its price.
 */
export function modelChoices(prices: Record<string, ModelPrice>, defaultModel: string): Array<{ id: string; price: ModelPrice | null }> {
  const table = new PriceTable(prices);
  const specific = new PriceTable(Object.fromEntries(Object.entries(prices).filter(([key]) => key !== '*')));
  const ids = [defaultModel, ...Object.keys(prices).filter((key) => !key.includes('*')), ...suggestedModels.filter((id) => specific.priceOf(id))];
  return [...new Set(ids)].map((id) => ({ id, price: table.priceOf(id) }));
}

/** The configured table, or the built-in one. A configured table replaces the built-in one entirely. */
export function createPriceTable(prices: Record<string, ModelPrice> | null): PriceTable {
  return new PriceTable(prices ?? defaultPrices);
}

/** Every kind of token together: what token quotas count. */
export function totalTokens(usage: TokenUsage): number {
  return usage.inputTokens + usage.outputTokens + usage.cacheCreationInputTokens + usage.cacheReadInputTokens;
}
