import type { z } from 'zod';
import { badRequest, conflict, forbidden, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Store } from '../core/store.ts';
import type { Agent, AgentDefinition, SandboxRuntimeChoice, User } from '../core/types.ts';
import type { AgentCeilings } from './agent-ceilings.ts';
import type { agentPatchSchema } from './agent-schema.ts';

export const defaultAgentId = 'agt_default';

/** The built-in agent every user can run; its model and time limit follow the server configuration. */
export function builtinDefaultAgent(options: { model: string; turnTimeoutSeconds: number }): Agent {
  const now = new Date(0).toISOString();
  return {
    id: defaultAgentId,
    ownerId: null,
    name: 'Claude Code',
    description: 'The built-in default agent: Claude Code with its standard tools.',
    instructions: '',
    model: options.model,
    allowedTools: [],
    disallowedTools: ['WebFetch', 'WebSearch'],
    maxTurns: null,
    // Two cores: the CLI's start-up is multi-threaded, and a 1-core quota adds 100–150 ms to every cold start.
    limits: { memoryMb: 2048, cpus: 2, turnTimeoutSeconds: options.turnTimeoutSeconds },
    egressDomains: [],
    sandboxRuntime: 'default',
    createdAt: now,
    updatedAt: now,
  };
}

/** Saved agent definitions: a user's own, plus the built-in ones. */
export class AgentsService {
  constructor(
    private readonly store: Store,
    /** The highest limits an agent may be given. */
    readonly ceilings: AgentCeilings,
    /** The runtimes this installation's sandbox backend can choose between (none for the local backend). */
    readonly sandboxRuntimes: readonly Exclude<SandboxRuntimeChoice, 'default'>[] = [],
  ) {}

  async installBuiltins(agents: Agent[]): Promise<void> {
    for (const agent of agents) await this.store.upsertAgent(agent);
  }

  list(user: User): Promise<Agent[]> {
    return this.store.listAgents(user.id);
  }

  /** An agent the user may run: their own or a built-in one. Another user's agent is "not found". */
  async get(user: User, agentId: string): Promise<Agent> {
    const agent = await this.store.getAgent(agentId);
    if (!agent || (agent.ownerId !== null && agent.ownerId !== user.id)) throw notFound('agent');
    return agent;
  }

  async create(user: User, definition: AgentDefinition): Promise<Agent> {
    this.assertRuntime(definition.sandboxRuntime);
    this.ceilings.assertWithin(definition.limits);
    const now = new Date().toISOString();
    return this.store.createAgent({ ...definition, id: newId('agt'), ownerId: user.id, createdAt: now, updatedAt: now });
  }

  async update(user: User, agentId: string, patch: z.output<typeof agentPatchSchema>): Promise<Agent> {
    const agent = await this.ownAgent(user, agentId);
    if (patch.sandboxRuntime !== undefined) this.assertRuntime(patch.sandboxRuntime);
    // Only the limits the patch sets: an agent over a ceiling lowered since can still be renamed (it runs clamped).
    if (patch.limits) this.ceilings.assertWithin(patch.limits);
    const { limits, ...rest } = patch;
    const updated = await this.store.updateAgent(
      agent.id,
      { ...rest, ...(limits ? { limits: { ...agent.limits, ...limits } } : {}) },
      new Date().toISOString(),
    );
    if (!updated) throw notFound('agent');
    return updated;
  }

  async delete(user: User, agentId: string): Promise<void> {
    const agent = await this.ownAgent(user, agentId);
    if ((await this.store.countConversationsUsingAgent(agent.id)) > 0) {
      throw conflict('the agent is used by conversations; delete them first');
    }
    await this.store.deleteAgent(agent.id);
  }

  private assertRuntime(runtime: SandboxRuntimeChoice): void {
    if (runtime === 'default' || this.sandboxRuntimes.includes(runtime)) return;
    throw badRequest(
      this.sandboxRuntimes.length === 0
        ? `sandboxRuntime ${runtime} needs the Docker sandbox backend; this installation's sandboxes have no runtime choice (use default)`
        : `sandboxRuntime must be default or one of: ${this.sandboxRuntimes.join(', ')}`,
      { field: 'sandboxRuntime' },
    );
  }

  private async ownAgent(user: User, agentId: string): Promise<Agent> {
    const agent = await this.get(user, agentId);
    if (agent.ownerId === null) throw forbidden('built-in agents cannot be changed; duplicate it instead');
    return agent;
  }
}
