import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.ts';
import { WarmPool, type PoolEntry } from './warm-pool.ts';

/** A pool whose containers are plain records, to check its bookkeeping without an engine. */
function recordingPool(size: number, failFirst = 0) {
  const created: PoolEntry[] = [];
  const destroyed: string[] = [];
  let attempts = 0;
  const pool = new WarmPool({
    size,
    logger: silentLogger,
    create: async (key) => {
      attempts += 1;
      if (attempts <= failFirst) throw new Error('engine busy');
      const entry = { containerId: `${key}#${attempts}`, slot: `pool_${attempts}` };
      created.push(entry);
      return entry;
    },
    destroy: async (entry) => void destroyed.push(entry.containerId),
  });
  return { pool, created, destroyed };
}

describe('WarmPool', () => {
  it('keeps each key filled to its size and never hands a container out twice', async () => {
    const { pool } = recordingPool(2);
    await pool.fillAndWait('a');
    expect(pool.status()).toEqual({ a: 2 });
    const first = pool.claim('a');
    const second = pool.claim('a');
    expect(first?.containerId).not.toBe(second?.containerId);
    expect(pool.claim('a')).toBeNull();
    expect(pool.claim('b')).toBeNull();
    await pool.fillAndWait('a');
    expect(pool.status()).toEqual({ a: 2 });
  });

  it('destroys what it holds on close and what finishes starting after', async () => {
    const { pool, destroyed } = recordingPool(1);
    await pool.fillAndWait('a');
    pool.fill('b');
    await pool.close();
    expect(destroyed.sort()).toEqual(['a#1', 'b#2']);
    expect(pool.enabled).toBe(false);
  });

  it('backs off after a failed start, and adopts and forgets containers', async () => {
    const { pool, destroyed } = recordingPool(1, 1);
    pool.fill('a');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pool.status()).toEqual({});
    pool.fill('a');
    expect(pool.status()).toEqual({});
    expect(pool.adopt('a', { containerId: 'old', slot: 'pool_old' })).toBe(true);
    expect(pool.adopt('a', { containerId: 'older', slot: 'pool_older' })).toBe(false);
    expect(pool.slots()).toEqual(['pool_old']);
    pool.forget('old');
    expect(pool.status()).toEqual({ a: 0 });
    expect(destroyed).toEqual(['old']);
  });

  it('is off with size 0', () => {
    expect(recordingPool(0).pool.enabled).toBe(false);
  });
});
