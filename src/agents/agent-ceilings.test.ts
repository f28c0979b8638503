import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../core/config.ts';
import type { Store } from '../core/store.ts';
import { createSqliteStore } from '../store/sqlite/index.ts';
import { AgentCeilings, clampLimits, limitOverCeiling } from './agent-ceilings.ts';
import { builtinDefaultAgent } from './agents-service.ts';

const configured = { memoryMb: 4096, cpus: 4, turnTimeoutSeconds: 3600 };

describe('agent ceilings', () => {
  it('names the first limit over its ceiling and clamps each limit to it', () => {
    expect(limitOverCeiling({ memoryMb: 4096, cpus: 4, turnTimeoutSeconds: 3600 }, configured)).toBeNull();
    expect(limitOverCeiling({ memoryMb: 65536, cpus: 64 }, configured)).toBe('memoryMb');
    expect(limitOverCeiling({ cpus: 4.5 }, configured)).toBe('cpus');
    expect(limitOverCeiling({ turnTimeoutSeconds: 86400 }, configured)).toBe('turnTimeoutSeconds');
    expect(clampLimits({ memoryMb: 65536, cpus: 1, turnTimeoutSeconds: 86400 }, configured)).toEqual({ memoryMb: 4096, cpus: 1, turnTimeoutSeconds: 3600 });
  });

  it('defaults to 4096 MiB, 4 CPUs and one hour, set through AGENTYARD_AGENT_MAX_*, and refuses values out of bounds', () => {
    expect(loadConfig({ env: {} }).agentCeilings).toEqual(configured);
    const set = loadConfig({ env: { AGENTYARD_AGENT_MAX_MEMORY_MB: '8192', AGENTYARD_AGENT_MAX_CPUS: '1.5', AGENTYARD_AGENT_MAX_TURN_SECONDS: '600' } });
    expect(set.agentCeilings).toEqual({ memoryMb: 8192, cpus: 1.5, turnTimeoutSeconds: 600 });
    const error = (() => {
      try {
        loadConfig({ env: { AGENTYARD_AGENT_MAX_MEMORY_MB: '64', AGENTYARD_AGENT_MAX_CPUS: 'many' } });
        return null;
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('AGENTYARD_AGENT_MAX_MEMORY_MB');
    expect((error as ConfigError).message).toContain('AGENTYARD_AGENT_MAX_CPUS');
  });

  describe('AgentCeilings', () => {
    let directory: string;
    let store: Store;

    beforeEach(async () => {
      directory = await mkdtemp(join(tmpdir(), 'ceilings-'));
      store = createSqliteStore({ path: join(directory, 'store.db') });
      await store.migrate();
    });

    afterEach(async () => {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    });

    it('refuses limits over a ceiling with a 400 naming the limit and the ceiling', () => {
      const ceilings = new AgentCeilings(store, configured);
      expect(() => ceilings.assertWithin({ memoryMb: 2048, cpus: 2, turnTimeoutSeconds: 60 })).not.toThrow();
      expect(() => ceilings.assertWithin({ cpus: 64 })).toThrow(
        expect.objectContaining({ code: 'BAD_REQUEST', status: 400, message: "limits.cpus is 64 CPUs, over this installation's ceiling of 4 CPUs", details: { field: 'limits.cpus', ceiling: 4 } }),
      );
    });

    it('keeps an administrator’s ceilings in the store across restarts, and goes back to the configured ones on reset', async () => {
      const first = new AgentCeilings(store, configured);
      await first.load();
      expect([first.values, first.source]).toEqual([configured, 'configuration']);
      await first.set({ memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 30 });

      const restarted = new AgentCeilings(store, configured);
      await restarted.load();
      expect([restarted.values, restarted.source]).toEqual([{ memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 30 }, 'administrator']);
      await restarted.reset();
      expect(restarted.values).toEqual(configured);

      const again = new AgentCeilings(store, configured);
      await again.load();
      expect([again.values, again.source]).toEqual([configured, 'configuration']);
    });

    it('ignores a stored value it cannot read, using the configured ceilings', async () => {
      await store.putSetting('agent-limits', '{"memoryMb":"lots"}');
      const ceilings = new AgentCeilings(store, configured);
      await ceilings.load();
      expect([ceilings.values, ceilings.source]).toEqual([configured, 'configuration']);
    });

    it('runs an agent over a lowered ceiling at the ceiling, and leaves one within alone', async () => {
      const ceilings = new AgentCeilings(store, configured);
      const agent = builtinDefaultAgent({ model: 'claude-sonnet-5', turnTimeoutSeconds: 900 });
      expect(ceilings.clamp(agent)).toBe(agent);
      await ceilings.set({ memoryMb: 1024, cpus: 4, turnTimeoutSeconds: 60 });
      const clamped = ceilings.clamp(agent);
      expect(clamped.limits).toEqual({ memoryMb: 1024, cpus: 2, turnTimeoutSeconds: 60 });
      expect(agent.limits).toEqual({ memoryMb: 2048, cpus: 2, turnTimeoutSeconds: 900 });
    });
  });
});
