import { describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.ts';
import { SandboxSlots, type SlotHolder } from './sandbox-slots.ts';

/** A holder that records when it was asked to give up its slot. */
class Holder implements SlotHolder {
  yielded = 0;
  constructor(
    public inUse: boolean,
    public lastUsedAt: number,
  ) {}
  async yieldSlot(): Promise<void> {
    this.yielded += 1;
  }
}

describe('SandboxSlots', () => {
  it('gives each user up to the cap and refuses, naming the bound, when every holder is in use', () => {
    const slots = new SandboxSlots(3);
    for (let index = 0; index < 3; index += 1) slots.take('alice', new Holder(true, index));
    const refusal = (() => {
      try {
        slots.take('alice', new Holder(true, 10));
        return null;
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(AppError);
    expect(refusal).toMatchObject({ code: 'SANDBOX_LIMIT_REACHED', status: 429, details: { bound: 'sandboxesPerUser', limit: 3 } });
    expect((refusal as AppError).message).toContain('AGENTYARD_MAX_SANDBOXES_PER_USER');
    expect(slots.count('alice')).toBe(3);
    // Another user's count is their own.
    slots.take('bob', new Holder(true, 0));
    expect(slots.count('bob')).toBe(1);
  });

  it('at the cap, stops the least recently used idle holder and passes its slot on', async () => {
    const slots = new SandboxSlots(3);
    const busy = new Holder(true, 1);
    const older = new Holder(false, 2);
    const newer = new Holder(false, 3);
    for (const holder of [busy, older, newer]) slots.take('alice', holder);
    const slot = slots.take('alice', new Holder(true, 4));
    await slot.ready;
    expect([busy.yielded, older.yielded, newer.yielded]).toEqual([0, 1, 0]);
    expect(slots.count('alice')).toBe(3);
  });

  it('ignores the release of a slot already passed on, so the new holder keeps it', () => {
    const slots = new SandboxSlots(1);
    const first = slots.take('alice', new Holder(false, 1));
    const second = slots.take('alice', new Holder(true, 2));
    slots.release(first);
    expect(slots.count('alice')).toBe(1);
    slots.release(second);
    expect(slots.count('alice')).toBe(0);
  });
});
