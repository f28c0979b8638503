import { badRequest } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { Store } from '../core/store.ts';
import type { Agent, AgentLimits } from '../core/types.ts';
import { agentLimitsSchema } from './agent-schema.ts';

/** The platform_settings key holding the administrators' ceilings, as JSON AgentLimits. */
const settingKey = 'agent-limits';

const units: Record<keyof AgentLimits, string> = { memoryMb: 'MiB', cpus: 'CPUs', turnTimeoutSeconds: 's' };
const order: (keyof AgentLimits)[] = ['memoryMb', 'cpus', 'turnTimeoutSeconds'];

/** The first of `limits` over its ceiling, or null when all are within. */
export function limitOverCeiling(limits: { [Name in keyof AgentLimits]?: number | undefined }, ceilings: AgentLimits): keyof AgentLimits | null {
  return order.find((name) => limits[name] !== undefined && limits[name] > ceilings[name]) ?? null;
}

/** Each limit lowered to its ceiling. */
export function clampLimits(limits: AgentLimits, ceilings: AgentLimits): AgentLimits {
  return {
    memoryMb: Math.min(limits.memoryMb, ceilings.memoryMb),
    cpus: Math.min(limits.cpus, ceilings.cpus),
    turnTimeoutSeconds: Math.min(limits.turnTimeoutSeconds, ceilings.turnTimeoutSeconds),
  };
}

/**
 * The highest memory, CPU and turn-time limits an agent may have. They start from the configuration
 * (AGENTYARD_AGENT_MAX_*); an administrator's change is kept in the store and wins over it, also after a restart.
 * New and changed agents are checked against them; agents saved before a ceiling was lowered run clamped to it.
 */
export class AgentCeilings {
  private current: AgentLimits;
  private changedByAdmin = false;

  constructor(
    private readonly store: Store,
    /** The configured ceilings, in force until an administrator sets others. */
    readonly defaults: AgentLimits,
    private readonly logger: Logger = silentLogger,
  ) {
    this.current = { ...defaults };
  }

  /** Reads an administrator's ceilings from the store; an unreadable value is logged and the configured ones apply. */
  async load(): Promise<void> {
    const stored = await this.store.getSetting(settingKey);
    if (stored === null) return;
    let value: unknown = null;
    try {
      value = JSON.parse(stored);
    } catch {
      // not JSON: refused by the schema below
    }
    const parsed = agentLimitsSchema.safeParse(value);
    if (!parsed.success) {
      this.logger.error({ setting: settingKey }, 'stored agent ceilings are invalid; using the configured ones');
      return;
    }
    this.current = parsed.data;
    this.changedByAdmin = true;
  }

  get values(): AgentLimits {
    return { ...this.current };
  }

  /** Where the ceilings in force come from. */
  get source(): 'configuration' | 'administrator' {
    return this.changedByAdmin ? 'administrator' : 'configuration';
  }

  /** Replaces the ceilings (an administrator's change); it applies to the next agent saved and the next turn. */
  async set(ceilings: AgentLimits): Promise<AgentLimits> {
    await this.store.putSetting(settingKey, JSON.stringify(ceilings));
    this.current = { ...ceilings };
    this.changedByAdmin = true;
    this.logger.info({ ceilings }, 'agent ceilings changed');
    return this.values;
  }

  /** Goes back to the configured ceilings. */
  async reset(): Promise<AgentLimits> {
    await this.store.deleteSetting(settingKey);
    this.current = { ...this.defaults };
    this.changedByAdmin = false;
    this.logger.info({ ceilings: this.current }, 'agent ceilings reset to the configured ones');
    return this.values;
  }

  /** Throws BAD_REQUEST naming the first limit over its ceiling. */
  assertWithin(limits: { [Name in keyof AgentLimits]?: number | undefined }): void {
    const over = limitOverCeiling(limits, this.current);
    if (over === null) return;
    const unit = units[over];
    throw badRequest(`limits.${over} is ${limits[over]} ${unit}, over this installation's ceiling of ${this.current[over]} ${unit}`, {
      field: `limits.${over}`,
      ceiling: this.current[over],
    });
  }

  /** The agent as it runs: each limit at most its ceiling. */
  clamp(agent: Agent): Agent {
    if (limitOverCeiling(agent.limits, this.current) === null) return agent;
    return { ...agent, limits: clampLimits(agent.limits, this.current) };
  }
}
