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

/** One user's running totals for the current UTC day and month, kept in memory so checks cost no query. */
class UserLedger {
  dayKey = '';
  monthKey = '';
  dayTokens = 0;
  dayCost = 0;
  monthTokens = 0;
  monthCost = 0;
  /** Seconds of sandboxes that ran this month and have stopped. */
  closedSandboxSeconds = 0;
  /** Running sandboxes: session id → start (ms). */
  readonly open = new Map<string, number>();

  /** Moves to the current period, dropping the totals of a period that ended. */
  roll(now: Date): void {
    const day = dayStart(now).toISOString();
    const month = monthStart(now).toISOString();
    if (month !== this.monthKey) {
      this.monthKey = month;
      this.monthTokens = 0;
      this.monthCost = 0;
      this.closedSandboxSeconds = 0;
    }
    if (day !== this.dayKey) {
      this.dayKey = day;
      this.dayTokens = 0;
      this.dayCost = 0;
    }
  }

  add(createdAt: string, tokens: number, cost: number): void {
    if (createdAt >= this.monthKey) {
      this.monthTokens += tokens;
      this.monthCost += cost;
    }
    if (createdAt >= this.dayKey) {
      this.dayTokens += tokens;
      this.dayCost += cost;
    }
  }

  endSession(sessionId: string, endedAt: Date): void {
    const started = this.open.get(sessionId);
    if (started === undefined) return;
    this.open.delete(sessionId);
    this.closedSandboxSeconds += Math.max(0, endedAt.getTime() - Math.max(started, Date.parse(this.monthKey))) / 1000;
  }

  sandboxHours(now: Date): number {
    const from = Date.parse(this.monthKey);
    let seconds = this.closedSandboxSeconds;
    for (const started of this.open.values()) seconds += Math.max(0, now.getTime() - Math.max(started, from)) / 1000;
    return seconds / 3600;
  }
}

/**
 * Quotas: each user's limits (the default, or an administrator's override), what they have used of them this
 * UTC day and month, and the refusals when a limit is reached. Usage is recorded through here so that the very
 * next check sees it.
 */
export class QuotasService {
  private readonly store: Store;
  private readonly prices: PriceTable;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private defaults: QuotaLimits;
  private readonly overrides = new Map<string, QuotaOverride | null>();
  private readonly ledgers = new Map<string, UserLedger>();
  private readonly loading = new Map<string, Promise<UserLedger>>();
  /** Per user, the store operations that a ledger load must not overlap. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Running sandbox sessions: id → user. */
  private readonly sessions = new Map<string, string>();

  constructor(options: QuotasServiceOptions) {
    this.store = options.store;
    this.prices = options.prices;
    this.defaults = { ...options.defaults };
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? (() => new Date());
  }

  /** Start-up: sandboxes left running by a process that crashed are counted as stopped now. */
  async recover(): Promise<void> {
    const ended = await this.store.endOpenSandboxSessions(this.now().toISOString());
    if (ended > 0) this.logger.warn({ sessions: ended }, 'ended sandbox sessions left open by a previous process');
  }

  get defaultLimits(): QuotaLimits {
    return { ...this.defaults };
  }

  /** The user's effective limits: the default, with the override's keys replacing it. */
  async limits(userId: string): Promise<QuotaLimits> {
    let override = this.overrides.get(userId);
    if (override === undefined) {
      override = await this.store.getQuotaOverride(userId);
      this.overrides.set(userId, override);
    }
    return { ...this.defaults, ...(override?.limits ?? {}) };
  }

  getOverride(userId: string): Promise<QuotaOverride | null> {
    return this.store.getQuotaOverride(userId);
  }

  listOverrides(): Promise<QuotaOverride[]> {
    return this.store.listQuotaOverrides();
  }

  /** Replaces the user's override; it applies to the next check. */
  async setOverride(userId: string, limits: Partial<QuotaLimits>): Promise<QuotaOverride> {
    const override = await this.store.putQuotaOverride({ userId, limits, updatedAt: this.now().toISOString() });
    this.overrides.set(userId, override);
    this.logger.info({ userId, limits }, 'quota override set');
    return override;
  }

  async deleteOverride(userId: string): Promise<boolean> {
    const deleted = await this.store.deleteQuotaOverride(userId);
    this.overrides.set(userId, null);
    return deleted;
  }

  /** Persists a metered model request and counts it against the user's quotas at once. */
  async record(record: UsageRecord): Promise<void> {
    const ledger = this.ledgers.get(record.userId);
    const tokens = totalTokens(record.usage);
    const cost = this.prices.cost(record.model, record.usage);
    if (ledger) {
      ledger.roll(this.now());
      ledger.add(record.createdAt, tokens, cost);
      await this.store.recordUsage(record);
      return;
    }
    // Not loaded yet: a load queued after this insert will read it; one queued before gets it added here.
    await this.serialize(record.userId, async () => {
      await this.store.recordUsage(record);
      const loaded = this.ledgers.get(record.userId);
      if (loaded) {
        loaded.roll(this.now());
        loaded.add(record.createdAt, tokens, cost);
      }
    });
  }

  /** Records that a sandbox started for the user; returns the session id to pass to `sandboxStopped`. */
  async sandboxStarted(userId: string, conversationId: string): Promise<string> {
    const id = newId('sbs');
    const startedAt = this.now();
    this.sessions.set(id, userId);
    this.ledgers.get(userId)?.open.set(id, startedAt.getTime());
    await this.serialize(userId, async () => {
      await this.store.startSandboxSession({ id, userId, conversationId, startedAt: startedAt.toISOString() });
      this.ledgers.get(userId)?.open.set(id, startedAt.getTime());
    });
    return id;
  }

  async sandboxStopped(sessionId: string): Promise<void> {
    const userId = this.sessions.get(sessionId);
    if (userId === undefined) return;
    this.sessions.delete(sessionId);
    const endedAt = this.now();
    this.ledgers.get(userId)?.endSession(sessionId, endedAt);
    await this.serialize(userId, async () => {
      await this.store.endSandboxSession(sessionId, endedAt.toISOString());
      this.ledgers.get(userId)?.endSession(sessionId, endedAt);
    });
  }

  /** Each quota of the user: limit, use and reset time. */
  async status(userId: string): Promise<QuotaState[]> {
    const limits = await this.limits(userId);
    const ledger = await this.ledger(userId);
    const now = this.now();
    ledger.roll(now);
    return quotaNames.map((quota) => ({ quota, limit: limits[quota], ...this.use(quota, ledger, now) }));
  }

  /**
   * The first quota that refuses a new turn, or null. `needsSandbox`: the turn would start a sandbox, so the
   * concurrent-sandbox quota applies too.
   */
  async checkTurn(userId: string, options: { needsSandbox: boolean }): Promise<QuotaRefusal | null> {
    const exempt: QuotaName[] = options.needsSandbox ? [] : ['concurrentSandboxes'];
    return this.check(userId, exempt);
  }

  /** Throws QUOTA_EXCEEDED (429) naming the quota and when it resets, unless the user may start a turn. */
  async assertCanStartTurn(userId: string, options: { needsSandbox: boolean }): Promise<void> {
    const refusal = await this.checkTurn(userId, options);
    if (refusal) throw quotaError(refusal, this.now());
  }

  /** Throws QUOTA_EXCEEDED unless the user may start one more sandbox. */
  async assertCanStartSandbox(userId: string): Promise<void> {
    const refusal = await this.check(userId, []);
    if (refusal) throw quotaError(refusal, this.now());
  }

  /** For the gateway, before each model request: a refusal when a token, cost or sandbox-hours quota is used up. */
  async checkModelRequest(userId: string): Promise<QuotaRefusal | null> {
    return this.check(userId, ['concurrentSandboxes']);
  }

  private async check(userId: string, exempt: QuotaName[]): Promise<QuotaRefusal | null> {
    const limits = await this.limits(userId);
    if (refusalOrder.every((quota) => limits[quota] === null || exempt.includes(quota))) return null;
    const ledger = await this.ledger(userId);
    const now = this.now();
    ledger.roll(now);
    for (const quota of refusalOrder) {
      const limit = limits[quota];
      if (limit === null || exempt.includes(quota)) continue;
      const { used, resetsAt } = this.use(quota, ledger, now);
      if (used >= limit) return { quota, limit, used, resetsAt, message: refusalMessage(quota, limit, used, resetsAt) };
    }
    return null;
  }

  private use(quota: QuotaName, ledger: UserLedger, now: Date): { used: number; resetsAt: string | null } {
    const endOfDay = nextDay(now).toISOString();
    const endOfMonth = nextMonth(now).toISOString();
    switch (quota) {
      case 'tokensPerDay':
        return { used: ledger.dayTokens, resetsAt: endOfDay };
      case 'tokensPerMonth':
        return { used: ledger.monthTokens, resetsAt: endOfMonth };
      case 'costPerDayUsd':
        return { used: roundUsd(ledger.dayCost), resetsAt: endOfDay };
      case 'costPerMonthUsd':
        return { used: roundUsd(ledger.monthCost), resetsAt: endOfMonth };
      case 'concurrentSandboxes':
        return { used: ledger.open.size, resetsAt: null };
      case 'sandboxHoursPerMonth':
        return { used: Math.round(ledger.sandboxHours(now) * 10_000) / 10_000, resetsAt: endOfMonth };
    }
  }

  /** The user's ledger, loaded from the store once (this month's usage and sandbox sessions). */
  private ledger(userId: string): Promise<UserLedger> {
    const loaded = this.ledgers.get(userId);
    if (loaded) return Promise.resolve(loaded);
    let pending = this.loading.get(userId);
    if (!pending) {
      pending = this.serialize(userId, () => this.load(userId)).finally(() => this.loading.delete(userId));
      this.loading.set(userId, pending);
    }
    return pending;
  }

  private async load(userId: string): Promise<UserLedger> {
    const now = this.now();
    const ledger = new UserLedger();
    ledger.roll(now);
    const groups = await this.store.aggregateUsage({ userId, from: ledger.monthKey, groupBy: ['day', 'model'] });
    const today = ledger.dayKey.slice(0, 10);
    for (const group of groups) {
      const tokens = totalTokens(group.usage);
      const cost = this.prices.cost(group.model ?? '', group.usage);
      ledger.monthTokens += tokens;
      ledger.monthCost += cost;
      if (group.day === today) {
        ledger.dayTokens += tokens;
        ledger.dayCost += cost;
      }
    }
    const from = Date.parse(ledger.monthKey);
    for (const session of await this.store.listSandboxSessions(userId, ledger.monthKey, nextMonth(now).toISOString())) {
      const started = Date.parse(session.startedAt);
      if (session.endedAt === null) ledger.open.set(session.id, started);
      else ledger.closedSandboxSeconds += Math.max(0, Date.parse(session.endedAt) - Math.max(started, from)) / 1000;
    }
    this.ledgers.set(userId, ledger);
    return ledger;
  }

  private serialize<T>(userId: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(userId) ?? Promise.resolve();
    const next = previous.then(operation, operation);
    const settled = next.catch(() => undefined);
    this.chains.set(userId, settled);
    void settled.then(() => {
      if (this.chains.get(userId) === settled) this.chains.delete(userId);
    });
    return next;
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
