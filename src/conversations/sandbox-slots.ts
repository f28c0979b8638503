import { AppError } from '../core/errors.ts';

/** What holds a sandbox slot: a conversation's runner. */
export interface SlotHolder {
  /** True while its sandbox may not be stopped: a turn runs or waits, a message is being queued, a terminal is attached. */
  readonly inUse: boolean;
  /** When it was last in use (ms since the epoch); the least recently used idle holder gives way first. */
  readonly lastUsedAt: number;
  /** Gives up its slot at once and stops its sandbox, keeping the workspace; resolves once the sandbox is gone. */
  yieldSlot(): Promise<void>;
}

/** One running sandbox's place in its user's count. */
export interface SandboxSlot {
  readonly userId: string;
  /** Resolves once the sandbox stopped to make room for this one is gone (at once when none was). */
  readonly ready: Promise<void>;
}

/**
 * How many sandboxes each user runs at once. A slot is taken in the same synchronous step as the count is checked,
 * so concurrent starts never go over the cap. At the cap, the user's least recently used idle sandbox is stopped to
 * make room; when every one of them is in use, the start is refused.
 */
export class SandboxSlots {
  private readonly held = new Map<string, Map<SandboxSlot, SlotHolder>>();

  constructor(readonly perUser: number) {}

  /** Takes a slot of the user's for `holder`, or throws SANDBOX_LIMIT_REACHED (429) naming the bound. */
  take(userId: string, holder: SlotHolder): SandboxSlot {
    const slots = this.held.get(userId) ?? new Map<SandboxSlot, SlotHolder>();
    let ready: Promise<void> = Promise.resolve();
    if (slots.size >= this.perUser) {
      const victim = leastRecentlyUsedIdle(slots);
      if (!victim) {
        throw new AppError(
          'SANDBOX_LIMIT_REACHED',
          `all ${this.perUser} of your sandboxes are busy (the per-user limit, AGENTYARD_MAX_SANDBOXES_PER_USER); send this message again when one of their turns has ended`,
          { bound: 'sandboxesPerUser', limit: this.perUser },
        );
      }
      slots.delete(victim.slot);
      ready = victim.holder.yieldSlot().catch(() => undefined);
    }
    const slot: SandboxSlot = { userId, ready };
    slots.set(slot, holder);
    this.held.set(userId, slots);
    return slot;
  }

  /** Gives the slot back; a slot already passed on to another holder is left alone. */
  release(slot: SandboxSlot): void {
    const slots = this.held.get(slot.userId);
    if (slots?.delete(slot) && slots.size === 0) this.held.delete(slot.userId);
  }

  /** Slots the user holds now. */
  count(userId: string): number {
    return this.held.get(userId)?.size ?? 0;
  }
}

function leastRecentlyUsedIdle(slots: Map<SandboxSlot, SlotHolder>): { slot: SandboxSlot; holder: SlotHolder } | null {
  let found: { slot: SandboxSlot; holder: SlotHolder } | null = null;
  for (const [slot, holder] of slots) {
    if (holder.inUse) continue;
    if (!found || holder.lastUsedAt < found.holder.lastUsedAt) found = { slot, holder };
  }
  return found;
}
