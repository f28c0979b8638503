import { notFound } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { Store } from '../core/store.ts';
import type { Agent } from '../core/types.ts';

/** An agent's egress as an administrator sees it. */
export interface AgentEgress {
  agentId: string;
  name: string;
  /** null for a built-in agent. */
  ownerId: string | null;
  ownerEmail: string | null;
  egressDomains: string[];
  updatedAt: string;
}

/**
 * The administrators' view of egress: which agents may reach what, and the power to narrow (or widen) any agent's
 * domains. A change applies from the agent's next turn, as the runner re-reads the agent then.
 */
export class EgressSettings {
  constructor(
    private readonly store: Store,
    private readonly logger: Logger = silentLogger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Every agent with egress (`all`: every agent), built-in ones first, then by owner. */
  async list(options: { all: boolean }): Promise<AgentEgress[]> {
    const seen = new Map<string, AgentEgress>();
    for (const user of await this.store.listUsers()) {
      for (const agent of await this.store.listAgents(user.id)) {
        if (seen.has(agent.id)) continue;
        seen.set(agent.id, this.present(agent, agent.ownerId === null ? null : user.email));
      }
    }
    return [...seen.values()]
      .filter((agent) => options.all || agent.egressDomains.length > 0)
      .sort((a, b) => Number(a.ownerId !== null) - Number(b.ownerId !== null) || (a.ownerEmail ?? '').localeCompare(b.ownerEmail ?? '') || a.name.localeCompare(b.name));
  }

  async set(agentId: string, egressDomains: string[]): Promise<AgentEgress> {
    const agent = await this.store.getAgent(agentId);
    if (!agent) throw notFound('agent');
    const updated = await this.store.updateAgent(agentId, { egressDomains }, this.now().toISOString());
    if (!updated) throw notFound('agent');
    this.logger.info({ agentId, egressDomains }, 'agent egress set by an administrator');
    const owner = updated.ownerId === null ? null : await this.store.getUser(updated.ownerId);
    return this.present(updated, owner?.email ?? null);
  }

  private present(agent: Agent, ownerEmail: string | null): AgentEgress {
    return { agentId: agent.id, name: agent.name, ownerId: agent.ownerId, ownerEmail, egressDomains: agent.egressDomains, updatedAt: agent.updatedAt };
  }
}
