import { describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.ts';
import { StreamSlots } from './stream-slots.ts';

function refusal(take: () => unknown): AppError {
  try {
    take();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('the slot was granted');
}

describe('StreamSlots', () => {
  it('refuses a stream past the per-conversation bound, naming it, until one is released', () => {
    const slots = new StreamSlots({ perUser: 10, perConversation: 2 });
    const first = slots.acquire('alice', 'conv_1');
    slots.acquire('bob', 'conv_1');
    const refused = refusal(() => slots.acquire('carol', 'conv_1'));
    expect(refused.code).toBe('TOO_MANY_STREAMS');
    expect(refused.status).toBe(429);
    expect(refused.message).toContain('AGENTYARD_EVENT_STREAMS_PER_CONVERSATION');
    expect(refused.details).toEqual({ limit: 2 });
    // Other conversations are not affected.
    slots.acquire('carol', 'conv_2');
    first();
    slots.acquire('carol', 'conv_1');
  });

  it('refuses a stream past the per-user bound across conversations, until one is released', () => {
    const slots = new StreamSlots({ perUser: 2, perConversation: 10 });
    slots.acquire('alice', 'conv_1');
    const second = slots.acquire('alice', 'conv_2');
    const refused = refusal(() => slots.acquire('alice', 'conv_3'));
    expect(refused.code).toBe('TOO_MANY_STREAMS');
    expect(refused.message).toContain('AGENTYARD_EVENT_STREAMS_PER_USER');
    slots.acquire('bob', 'conv_3');
    second();
    slots.acquire('alice', 'conv_3');
  });

  it('gives a slot back once however often it is released', () => {
    const slots = new StreamSlots({ perUser: 1, perConversation: 1 });
    const release = slots.acquire('alice', 'conv_1');
    release();
    release();
    slots.acquire('alice', 'conv_1');
    expect(() => slots.acquire('alice', 'conv_1')).toThrow(AppError);
  });

  it('does not count a refused stream', () => {
    const slots = new StreamSlots({ perUser: 1, perConversation: 5 });
    slots.acquire('alice', 'conv_1');
    refusal(() => slots.acquire('alice', 'conv_2'));
    // The refused attempt did not take conv_2's slot: bob's five still fit.
    for (let index = 0; index < 5; index += 1) slots.acquire(`bob${index}`, 'conv_2');
  });
});
