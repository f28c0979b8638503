import { describe, expect, it } from 'vitest';
import { defaultPrices, modelChoices } from './price-table.ts';

describe('modelChoices', () => {
  it('lists the default model first, then the suggested ids the built-in table prices, each with its price', () => {
    const choices = modelChoices(defaultPrices, 'claude-sonnet-5');
    expect(choices.map((choice) => choice.id)).toEqual(['claude-sonnet-5', 'claude-opus-4-5', 'claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-opus-4-1']);
    expect(choices.find((choice) => choice.id === 'claude-haiku-4-5')!.price).toEqual(defaultPrices['claude-haiku-*']);
    expect(choices.find((choice) => choice.id === 'claude-opus-4-1')!.price).toEqual(defaultPrices['claude-opus-4-1*']);
  });

  it('lists a configured table’s exact ids, and only the suggestions it prices with an entry of their own', () => {
    const price = { input: 1, output: 2, cacheWrite: 1, cacheRead: 0.1 };
    const choices = modelChoices({ 'local-llama': price, 'claude-haiku-*': price, '*': price }, 'claude-haiku-4-5');
    expect(choices).toEqual([
      { id: 'claude-haiku-4-5', price },
      { id: 'local-llama', price },
    ]);
    expect(modelChoices({ 'local-llama': price }, 'mystery-model')).toEqual([
      { id: 'mystery-model', price: null },
      { id: 'local-llama', price },
    ]);
  });
});
