/**
 * The API's shapes, under the names the app uses. Each comes from ./schema.d.ts, which `npm run api-types` generates
 * from the server's OpenAPI spec (GET /api/openapi.json): the app never imports server code, nor restates a shape.
 */
import type { components, paths } from './schema.d.ts';

type Schemas = components['schemas'];
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** The JSON body a route answers with (its 200 unless another status is named). */
type Answer<Path extends keyof paths, M extends Method, Status extends number = 200> = paths[Path][M] extends {
  responses: { [S in Status]: { content: { 'application/json': infer Body } } };
}
  ? Body
  : never;

/** The JSON body a route takes. */
type RequestBody<Path extends keyof paths, M extends Method> = paths[Path][M] extends { requestBody?: { content: { 'application/json': infer Body } } } ? Body : never;

export type User = Schemas['User'];

export type Status = Answer<'/api/status', 'get'>;

/** A conversation; `running` where the answer tells it (the list, a conversation's detail). */
export type Conversation = Schemas['Conversation'] & Partial<Pick<Answer<'/api/conversations', 'get'>['conversations'][number], 'running'>>;

export type Agent = Schemas['Agent'];

export type AgentLimits = Agent['limits'];

/** The administrators' ceilings of agents' limits, as an administrator sees them (GET /api/admin/agent-limits). */
export type AgentCeilingsState = Answer<'/api/admin/agent-limits', 'get'>;

type AgentBody = RequestBody<'/api/agents', 'post'>;

/** What POST /api/agents takes, with the fields this app edits always present; the others ride along as they are. */
export type AgentDefinition = AgentBody & Required<Pick<AgentBody, 'description' | 'instructions' | 'allowedTools' | 'disallowedTools' | 'maxTurns'>>;

export type ApiToken = Schemas['ApiToken'];

export type WorkspaceEntry = Answer<'/api/conversations/{id}/files', 'get'>['entries'][number];

export type Activity = Answer<'/api/admin/activity', 'get'>['conversations'][number];
export type Replica = Answer<'/api/admin/replicas', 'get'>['replicas'][number];

/** GET /api/models: the models an agent may be given, the default first. */
export type ModelChoices = Answer<'/api/models', 'get'>;

export type ModelPrice = NonNullable<ModelChoices['models'][number]['price']>;

/** GET /api/usage: totals, and rows by day and agent. */
export type UsageReport = Answer<'/api/usage', 'get'>;

export type UsageTotals = UsageReport['totals'];

/** GET /api/quota: each limit (null: unlimited), what is used of it and when it resets. */
export type QuotaReport = Answer<'/api/quota', 'get'>;

export type QuotaName = QuotaReport['quotas'][number]['quota'];

export type TokenUsage = Schemas['TokenUsage'];

export type TurnStatus = Schemas['TurnStatus'];

/** A conversation event as streamed: `seq` numbers a conversation's events from 1 without gaps. */
export type ConversationEvent = Schemas['ConversationEvent'];
