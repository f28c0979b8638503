import type { Logger } from '../../core/logger.ts';

/** `image|runtime|<memory>m|<cpus>c|<pids>p|<open files>n`: pool containers are interchangeable only within one key. */
export type PoolKey = string;

/** A warm container: started, holding no user data and no credential, its slot directories empty. */
export interface PoolEntry {
  containerId: string;
  slot: string;
}

export interface WarmPoolOptions {
  /** Containers kept ready per key; 0 turns the pool off. */
  size: number;
  create(key: PoolKey): Promise<PoolEntry>;
  destroy(entry: PoolEntry): Promise<void>;
  logger: Logger;
}

const retryAfterFailureMs = 10_000;

/**
 * Keeps `size` started containers per key. A claim takes one (it is never given back: released means destroyed)
 * and the pool starts a replacement in the background, one at a time per key so that refilling never competes
 * with running agents for more than one core.
 */
export class WarmPool {
  private readonly ready = new Map<PoolKey, PoolEntry[]>();
  private readonly filling = new Map<PoolKey, Promise<void>>();
  private readonly failedAt = new Map<PoolKey, number>();
  private closed = false;

  constructor(private readonly options: WarmPoolOptions) {}

  get enabled(): boolean {
    return this.options.size > 0 && !this.closed;
  }

  claim(key: PoolKey): PoolEntry | null {
    return this.ready.get(key)?.shift() ?? null;
  }

  /** Starts filling the key up to size in the background. */
  fill(key: PoolKey): void {
    if (!this.enabled || this.filling.has(key)) return;
    if (Date.now() - (this.failedAt.get(key) ?? 0) < retryAfterFailureMs) return;
    const run = (async () => {
      while (this.enabled && (this.ready.get(key)?.length ?? 0) < this.options.size) {
        let entry: PoolEntry;
        try {
          entry = await this.options.create(key);
        } catch (error) {
          this.failedAt.set(key, Date.now());
          this.options.logger.warn({ key, error: error instanceof Error ? error.message : String(error) }, 'could not start a pool container');
          return;
        }
        if (!this.enabled) {
          await this.options.destroy(entry).catch(() => undefined);
          return;
        }
        this.list(key).push(entry);
      }
    })().finally(() => this.filling.delete(key));
    this.filling.set(key, run);
  }

  /** Fills the key and waits until it is full (or a creation failed). */
  async fillAndWait(key: PoolKey): Promise<void> {
    this.failedAt.delete(key);
    this.fill(key);
    await this.filling.get(key);
  }

  /** Takes a container found by the start-up sweep; false when the key is already full. */
  adopt(key: PoolKey, entry: PoolEntry): boolean {
    if (!this.enabled || this.list(key).length >= this.options.size) return false;
    this.list(key).push(entry);
    return true;
  }

  /** Drops a container that died. */
  forget(containerId: string): void {
    for (const entries of this.ready.values()) {
      const index = entries.findIndex((entry) => entry.containerId === containerId);
      if (index >= 0) {
        const [entry] = entries.splice(index, 1);
        void this.options.destroy(entry!).catch(() => undefined);
      }
    }
  }

  slots(): string[] {
    return [...this.ready.values()].flat().map((entry) => entry.slot);
  }

  status(): Record<PoolKey, number> {
    return Object.fromEntries([...this.ready].map(([key, entries]) => [key, entries.length]));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.filling.values()]);
    const entries = [...this.ready.values()].flat();
    this.ready.clear();
    await Promise.allSettled(entries.map((entry) => this.options.destroy(entry)));
  }

  private list(key: PoolKey): PoolEntry[] {
    let entries = this.ready.get(key);
    if (!entries) this.ready.set(key, (entries = []));
    return entries;
  }
}
