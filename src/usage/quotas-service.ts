import { AppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { Store } from '../core/store.ts';
import type { QuotaLimits, QuotaName, QuotaOverride, UsageRecord } from '../core/types.ts';
import { totalTokens, type PriceTable } from './price-table.ts';

/** Why something was refused: which quota, its limit, the use so far and when it frees up (null: when a sandbox stops). */
export interface QuotaRefusal {
  quota: QuotaName;
  limit: number;
  used: number;
  resetsAt: string | null;
  message: string;
}

/** One quota as the user sees it. */
export interface QuotaState {
  quota: QuotaName;
  /** null: unlimited. */
  limit: number | null;
  used: number;
  resetsAt: string | null;
}

export interface QuotasServiceOptions {
  store: Store;
  prices: PriceTable;
  /** The limits of every user without an override. */
  defaults: QuotaLimits;
  logger?: Logger;
  now?: () => Date;
  /**
   * This replica's id, recorded with each sandbox session so that the other replicas can end its sessions if it
   * stops; none: a single-process server.
   */
  replicaId?: string;
  /** How long a replica goes unheard of (its heartbeat) before its open sandbox sessions are ended: its lease period. */
  replicaStaleMs?: number;
}

export const quotaNames: QuotaName[] = [
  'tokensPerDay',
  'tokensPerMonth',
  'costPerDayUsd',
  'costPerMonthUsd',
  'concurrentSandboxes',
  'sandboxHoursPerMonth',
];

/** When several quotas are used up, the one that frees up last is named: waiting for the others would not help. */
const refusalOrder: QuotaName[] = ['tokensPerMonth', 'costPerMonthUsd', 'sandboxHoursPerMonth', 'tokensPerDay', 'costPerDayUsd', 'concurrentSandboxes'];

const describe: Record<QuotaName, (limit: number) => string> = {
  tokensPerDay: (limit) => `daily token quota (${limit} tokens)`,
  tokensPerMonth: (limit) => `monthly token quota (${limit} tokens)`,
  costPerDayUsd: (limit) => `daily cost quota ($${limit})`,
  costPerMonthUsd: (limit) => `monthly cost quota ($${limit})`,
  concurrentSandboxes: (limit) => `concurrent sandbox quota (${limit})`,
  sandboxHoursPerMonth: (limit) => `monthly sandbox-hours quota (${limit} h)`,
};

const dayStart = (at: Date): Date => new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
const monthStart = (at: Date): Date => new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
const nextDay = (at: Date): Date => new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1));
const nextMonth = (at: Date): Date => new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));

const tokenQuotas = new Set<QuotaName>(['tokensPerDay', 'tokensPerMonth', 'costPerDayUsd', 'costPerMonthUsd']);
const sandboxQuotas = new Set<QuotaName>(['concurrentSandboxes', 'sandboxHoursPerMonth']);

/** What a user has used this UTC day and month, as read from the store for one check. */
interface Use {
  dayTokens: number;
  dayCost: number;
  monthTokens: number;
  monthCost: number;
  openSandboxes: number;
  sandboxHours: number;
}

/** How many users' last answers are kept for an outage of the store. */
const maxLastDecisions = 10_000;

const nothingUsed: Use = { dayTokens: 0, dayCost: 0, monthTokens: 0, monthCost: 0, openSandboxes: 0, sandboxHours: 0 };

/**
 * Quotas: each user's limits (the default, or an administrator's override), what they have used of them this
 * UTC day and month, and the refusals when a limit is reached.
 *
 * Every check reads the override and the use from the store, with no cache, so the limits hold across replicas
 * (docs/decisions/0014-shared-limits.md). A check costs the override's row and, for the quotas that apply, the
 * month's daily token totals and the month's sandbox sessions (read side by side), all by index. Usage recorded
 * through this service is waited for before this process's next check of the user, so that check sees it. Only
 * while the store is unavailable does a check answer from memory: as the last one that could read the store.
 */
export class QuotasService {
  private readonly store: Store;
  private readonly prices: PriceTable;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly replicaId: string | null;
  private readonly replicaStaleMs: number | null;
  private defaults: QuotaLimits;
  /** Usage records being written, per user: a check waits for them. */
  private readonly recording = new Map<string, Set<Promise<void>>>();
  /** The last answer of each kind of check per user, for while the store is unavailable (see `decide`). */
  private readonly lastDecisions = new Map<string, QuotaRefusal | null>();

  constructor(options: QuotasServiceOptions) {
    this.store = options.store;
    this.prices = options.prices;
    this.defaults = { ...options.defaults };
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? (() => new Date());
    this.replicaId = options.replicaId ?? null;
    this.replicaStaleMs = options.replicaStaleMs ?? null;
  }

  /**
   * Start-up: sandboxes left running by a process that crashed are counted as stopped now. With a replica id, those
   * are the sessions this replica recorded and those of replicas that stopped; without, every open session (the
   * server is the only process).
   */
  async recover(): Promise<void> {
    const now = this.now();
    const ended =
      this.replicaId === null
        ? await this.store.endOpenSandboxSessions(now.toISOString())
        : (await this.store.endSandboxSessionsOfReplica(this.replicaId, now.toISOString())) + (await this.endSessionsOfStoppedReplicas(now));
    if (ended > 0) this.logger.warn({ sessions: ended }, 'ended sandbox sessions left open by a previous process');
  }

  get defaultLimits(): QuotaLimits {
    return { ...this.defaults };
  }

  /** The user's effective limits: the default, with the override's keys replacing it. Read from the store each time. */
  async limits(userId: string): Promise<QuotaLimits> {
    const override = await this.store.getQuotaOverride(userId);
    return { ...this.defaults, ...(override?.limits ?? {}) };
  }

  getOverride(userId: string): Promise<QuotaOverride | null> {
    return this.store.getQuotaOverride(userId);
  }

  listOverrides(): Promise<QuotaOverride[]> {
    return this.store.listQuotaOverrides();
  }

  /** Replaces the user's override; it applies to the next check, on every replica. */
  async setOverride(userId: string, limits: Partial<QuotaLimits>): Promise<QuotaOverride> {
    const override = await this.store.putQuotaOverride({ userId, limits, updatedAt: this.now().toISOString() });
    this.logger.info({ userId, limits }, 'quota override set');
    return override;
  }

  deleteOverride(userId: string): Promise<boolean> {
    return this.store.deleteQuotaOverride(userId);
  }

  /** Persists a metered model request; this process's next check of the user waits for it and counts it. */
  async record(record: UsageRecord): Promise<void> {
    const write = this.store.recordUsage(record);
    let pending = this.recording.get(record.userId);
    if (!pending) {
      pending = new Set();
      this.recording.set(record.userId, pending);
    }
    const settled = write.catch(() => undefined);
    pending.add(settled);
    try {
      await write;
    } finally {
      pending.delete(settled);
      if (pending.size === 0 && this.recording.get(record.userId) === pending) this.recording.delete(record.userId);
    }
  }

  /**
   * Starts counting a sandbox for the user unless a quota refuses it (QUOTA_EXCEEDED): the sandbox-hours, token and
   * cost quotas as read now, and the concurrent-sandbox quota atomically across replicas (the session is recorded
   * only while fewer than the limit are open). Call it before starting the sandbox, and `sandboxStopped` with the
   * returned session id when the sandbox stops or fails to start.
   */
  async startSandbox(userId: string, conversationId: string): Promise<string> {
    const limits = await this.limits(userId);
    const refusal = await this.refusal(userId, limits, ['concurrentSandboxes']);
    if (refusal) throw quotaError(refusal, this.now());
    const now = this.now();
    const session = { id: newId('sbs'), userId, conversationId, startedAt: now.toISOString(), replicaId: this.replicaId };
    const limit = limits.concurrentSandboxes;
    let result = await this.store.startSandboxSessionWithin(session, limit);
    // Sessions of a replica that stopped hold no sandbox: end them, then count again.
    if (!result.started && (await this.endSessionsOfStoppedReplicas(now)) > 0) result = await this.store.startSandboxSessionWithin(session, limit);
    if (!result.started && limit !== null) {
      const used = result.open;
      throw quotaError({ quota: 'concurrentSandboxes', limit, used, resetsAt: null, message: refusalMessage('concurrentSandboxes', limit, used, null) }, now);
    }
    return session.id;
  }

  async sandboxStopped(sessionId: string): Promise<void> {
    await this.store.endSandboxSession(sessionId, this.now().toISOString());
  }

  /** Each quota of the user: limit, use and reset time. */
  async status(userId: string): Promise<QuotaState[]> {
    const limits = await this.limits(userId);
    const now = this.now();
    const use = await this.read(userId, quotaNames, now);
    return quotaNames.map((quota) => ({ quota, limit: limits[quota], ...usedOf(quota, use, now) }));
  }

  /**
   * The first quota that refuses a new turn, or null. `needsSandbox`: the turn would start a sandbox, so the
   * concurrent-sandbox quota applies too.
   */
  async checkTurn(userId: string, options: { needsSandbox: boolean }): Promise<QuotaRefusal | null> {
    const exempt: QuotaName[] = options.needsSandbox ? [] : ['concurrentSandboxes'];
    return this.decide(userId, exempt);
  }

  /** Throws QUOTA_EXCEEDED (429) naming the quota and when it resets, unless the user may start a turn. */
  async assertCanStartTurn(userId: string, options: { needsSandbox: boolean }): Promise<void> {
    const refusal = await this.checkTurn(userId, options);
    if (refusal) throw quotaError(refusal, this.now());
  }

  /** For the gateway, before each model request: a refusal when a token, cost or sandbox-hours quota is used up. */
  async checkModelRequest(userId: string): Promise<QuotaRefusal | null> {
    return this.decide(userId, ['concurrentSandboxes']);
  }

  /**
   * The refusal, or null, from the store. While the store cannot answer, the last answer of a check of the same kind
   * for the user that could read it stands (a running agent is not stopped by a database restart); with none, the
   * check fails with STORE_UNAVAILABLE.
   */
  private async decide(userId: string, exempt: QuotaName[]): Promise<QuotaRefusal | null> {
    const key = `${userId} ${exempt.join(',')}`;
    try {
      const refusal = await this.refusal(userId, await this.limits(userId), exempt);
      this.lastDecisions.delete(key);
      this.lastDecisions.set(key, refusal);
      // The oldest decision goes first; only an outage of the store reads them.
      if (this.lastDecisions.size > maxLastDecisions) this.lastDecisions.delete(this.lastDecisions.keys().next().value!);
      return refusal;
    } catch (error) {
      const last = this.lastDecisions.get(key);
      if (!(error instanceof AppError && error.code === 'STORE_UNAVAILABLE') || last === undefined) throw error;
      // The quota named is the one that frees up last: once it has, so have the others.
      return last !== null && last.resetsAt !== null && Date.parse(last.resetsAt) <= this.now().getTime() ? null : last;
    }
  }

  /** The quota that refuses (the one that frees up last), reading only what the applicable quotas need. */
  private async refusal(userId: string, limits: QuotaLimits, exempt: QuotaName[]): Promise<QuotaRefusal | null> {
    const applicable = refusalOrder.filter((quota) => limits[quota] !== null && !exempt.includes(quota));
    if (applicable.length === 0) return null;
    const now = this.now();
    let refusal = firstRefusal(applicable, limits, await this.read(userId, applicable, now), now);
    // A sandbox quota may be held by sessions of a replica that stopped: end them, then look again.
    if (refusal && sandboxQuotas.has(refusal.quota) && (await this.endSessionsOfStoppedReplicas(now)) > 0) {
      refusal = firstRefusal(applicable, limits, await this.read(userId, applicable, now), now);
    }
    return refusal;
  }

  /** The user's use this UTC day and month, reading from the store only what the quotas need. */
  private async read(userId: string, quotas: QuotaName[], now: Date): Promise<Use> {
    const [tokens, sandboxes] = await Promise.all([
      quotas.some((quota) => tokenQuotas.has(quota)) ? this.readTokens(userId, now) : null,
      quotas.some((quota) => sandboxQuotas.has(quota)) ? this.readSandboxes(userId, now) : null,
    ]);
    return { ...nothingUsed, ...tokens, ...sandboxes };
  }

  private async readTokens(userId: string, now: Date): Promise<Pick<Use, 'dayTokens' | 'dayCost' | 'monthTokens' | 'monthCost'>> {
    // What this process is writing for the user counts too: wait until it is in the store.
    const pending = this.recording.get(userId);
    if (pending) await Promise.all([...pending]);
    const today = dayStart(now).toISOString().slice(0, 10);
    const totals = await this.store.usageTotals(userId, monthStart(now).toISOString().slice(0, 10));
    const use = { dayTokens: 0, dayCost: 0, monthTokens: 0, monthCost: 0 };
    for (const total of totals) {
      const tokens = totalTokens(total.usage);
      const cost = this.prices.cost(total.model ?? '', total.usage);
      use.monthTokens += tokens;
      use.monthCost += cost;
      if (total.day === today) {
        use.dayTokens += tokens;
        use.dayCost += cost;
      }
    }
    return use;
  }

  private async readSandboxes(userId: string, now: Date): Promise<Pick<Use, 'openSandboxes' | 'sandboxHours'>> {
    const from = monthStart(now);
    const sessions = await this.store.listSandboxSessions(userId, from.toISOString(), nextMonth(now).toISOString());
    let seconds = 0;
    let open = 0;
    for (const session of sessions) {
      if (session.endedAt === null) open += 1;
      const end = session.endedAt === null ? now.getTime() : Date.parse(session.endedAt);
      seconds += Math.max(0, end - Math.max(Date.parse(session.startedAt), from.getTime())) / 1000;
    }
    return { openSandboxes: open, sandboxHours: seconds / 3600 };
  }

  /** Ends the open sandbox sessions of replicas that stopped (not heard of for `replicaStaleMs`); how many. */
  private async endSessionsOfStoppedReplicas(now: Date): Promise<number> {
    if (this.replicaStaleMs === null) return 0;
    const ended = await this.store.endSandboxSessionsOfStoppedReplicas(new Date(now.getTime() - this.replicaStaleMs).toISOString(), now.toISOString());
    if (ended > 0) this.logger.warn({ sessions: ended }, 'ended the sandbox sessions of replicas that stopped');
    return ended;
  }
}

function firstRefusal(applicable: QuotaName[], limits: QuotaLimits, use: Use, now: Date): QuotaRefusal | null {
  for (const quota of applicable) {
    const limit = limits[quota];
    if (limit === null) continue;
    const { used, resetsAt } = usedOf(quota, use, now);
    if (used >= limit) return { quota, limit, used, resetsAt, message: refusalMessage(quota, limit, used, resetsAt) };
  }
  return null;
}

function usedOf(quota: QuotaName, use: Use, now: Date): { used: number; resetsAt: string | null } {
  const endOfDay = nextDay(now).toISOString();
  const endOfMonth = nextMonth(now).toISOString();
  switch (quota) {
    case 'tokensPerDay':
      return { used: use.dayTokens, resetsAt: endOfDay };
    case 'tokensPerMonth':
      return { used: use.monthTokens, resetsAt: endOfMonth };
    case 'costPerDayUsd':
      return { used: roundUsd(use.dayCost), resetsAt: endOfDay };
    case 'costPerMonthUsd':
      return { used: roundUsd(use.monthCost), resetsAt: endOfMonth };
    case 'concurrentSandboxes':
      return { used: use.openSandboxes, resetsAt: null };
    case 'sandboxHoursPerMonth':
      return { used: Math.round(use.sandboxHours * 10_000) / 10_000, resetsAt: endOfMonth };
  }
}

const roundUsd = (value: number): number => Math.round(value * 1_000_000) / 1_000_000;

function refusalMessage(quota: QuotaName, limit: number, used: number, resetsAt: string | null): string {
  const what = describe[quota](limit);
  if (quota === 'concurrentSandboxes') {
    return `the ${what} is reached: ${used} sandboxes are running; another can start when one of them stops`;
  }
  return `the ${what} is used up (used: ${used}); it resets at ${resetsAt}`;
}

/** The API error for a refusal: 429 QUOTA_EXCEEDED with the quota, limit, use and reset time as details. */
export function quotaError(refusal: QuotaRefusal, now: Date = new Date()): AppError {
  const retryAfterSeconds = refusal.resetsAt === null ? null : Math.max(1, Math.ceil((Date.parse(refusal.resetsAt) - now.getTime()) / 1000));
  return new AppError('QUOTA_EXCEEDED', refusal.message, {
    quota: refusal.quota,
    limit: refusal.limit,
    used: refusal.used,
    resetsAt: refusal.resetsAt,
    ...(retryAfterSeconds === null ? {} : { retryAfterSeconds }),
  });
}
