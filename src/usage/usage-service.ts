import { badRequest } from '../core/errors.ts';
import type { Store, UsageAggregate } from '../core/store.ts';
import type { TokenUsage } from '../core/types.ts';
import { totalTokens, type PriceTable } from './price-table.ts';

/** Token counts by kind, their sum, the request count and the estimated cost. */
export interface UsageTotals {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cacheCreationInputTokens: number;
  cacheReadInputTokens: number;
  totalTokens: number;
  /** Estimated from the configured price table, USD. */
  costUsd: number;
}

export interface UsageRow extends UsageTotals {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  agentId: string | null;
  /** The agent's current name; null when it no longer exists. */
  agentName: string | null;
  /** Present in reports across users. */
  userId?: string;
}

export interface UserUsage extends UsageTotals {
  userId: string;
  email: string | null;
}

export interface UsageReport {
  /** First day of the period (UTC, inclusive). */
  from: string;
  /** Last day of the period (UTC, inclusive). */
  to: string;
  /** The user reported on; null for a report across every user. */
  userId: string | null;
  totals: UsageTotals;
  rows: UsageRow[];
  /** Totals per user, in reports across users. */
  users?: UserUsage[];
}

/** A real calendar day as YYYY-MM-DD (not 2025-02-30). */
function isDay(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const parsed = new Date(`${value}T00:00:00.000Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === value;
}

const emptyTotals = (): UsageTotals => ({
  requests: 0,
  inputTokens: 0,
  outputTokens: 0,
  cacheCreationInputTokens: 0,
  cacheReadInputTokens: 0,
  totalTokens: 0,
  costUsd: 0,
});

function addTo(totals: UsageTotals, requests: number, usage: TokenUsage, cost: number): void {
  totals.requests += requests;
  totals.inputTokens += usage.inputTokens;
  totals.outputTokens += usage.outputTokens;
  totals.cacheCreationInputTokens += usage.cacheCreationInputTokens;
  totals.cacheReadInputTokens += usage.cacheReadInputTokens;
  totals.totalTokens += totalTokens(usage);
  totals.costUsd += cost;
}

const roundCost = <T extends UsageTotals>(totals: T): T => ({ ...totals, costUsd: Math.round(totals.costUsd * 1_000_000) / 1_000_000 });

/** Usage reports: totals plus rows by day and agent (and user, across users), with the estimated cost. */
export class UsageService {
  constructor(
    private readonly store: Store,
    private readonly prices: PriceTable,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * The report for one user (or every user when `userId` is null) over [from, to], whole UTC days. The default
   * period is the current month up to today.
   */
  async report(options: { userId: string | null; from?: string | undefined; to?: string | undefined }): Promise<UsageReport> {
    const today = this.now().toISOString().slice(0, 10);
    const from = options.from ?? `${today.slice(0, 7)}-01`;
    const to = options.to ?? today;
    for (const [name, value] of [['from', from], ['to', to]] as const) {
      if (!isDay(value)) throw badRequest(`${name} must be a day, YYYY-MM-DD`);
    }
    if (to < from) throw badRequest('to must not be before from');
    const across = options.userId === null;
    const end = new Date(Date.parse(`${to}T00:00:00Z`) + 24 * 3600 * 1000).toISOString();
    const groups = await this.store.aggregateUsage({
      ...(across ? {} : { userId: options.userId! }),
      from: `${from}T00:00:00.000Z`,
      to: end,
      groupBy: across ? ['user', 'day', 'agent', 'model'] : ['day', 'agent', 'model'],
    });

    const totals = emptyTotals();
    const rows = new Map<string, UsageRow>();
    const users = new Map<string, UserUsage>();
    const agentNames = new Map<string, string | null>();
    for (const group of groups) {
      const cost = this.prices.cost(group.model ?? '', group.usage);
      addTo(totals, group.requests, group.usage, cost);
      const agentId = group.agentId ?? null;
      const key = `${group.userId ?? ''}\u0000${group.day}\u0000${agentId ?? ''}`;
      let row = rows.get(key);
      if (!row) {
        if (agentId !== null && !agentNames.has(agentId)) agentNames.set(agentId, (await this.store.getAgent(agentId))?.name ?? null);
        row = { day: group.day!, agentId, agentName: agentId === null ? null : (agentNames.get(agentId) ?? null), ...emptyTotals() };
        if (across) row.userId = group.userId!;
        rows.set(key, row);
      }
      addTo(row, group.requests, group.usage, cost);
      if (across) this.addUser(users, group, cost);
    }
    const report: UsageReport = { from, to, userId: options.userId, totals: roundCost(totals), rows: [...rows.values()].map(roundCost) };
    if (across) {
      for (const user of users.values()) user.email = (await this.store.getUser(user.userId))?.email ?? null;
      report.users = [...users.values()].map(roundCost);
    }
    return report;
  }

  private addUser(users: Map<string, UserUsage>, group: UsageAggregate, cost: number): void {
    const userId = group.userId!;
    let user = users.get(userId);
    if (!user) {
      user = { userId, email: null, ...emptyTotals() };
      users.set(userId, user);
    }
    addTo(user, group.requests, group.usage, cost);
  }
}

const csvColumns: Array<[string, (row: UsageRow) => string | number | null | undefined]> = [
  ['day', (row) => row.day],
  ['user_id', (row) => row.userId],
  ['agent_id', (row) => row.agentId],
  ['agent_name', (row) => row.agentName],
  ['requests', (row) => row.requests],
  ['input_tokens', (row) => row.inputTokens],
  ['output_tokens', (row) => row.outputTokens],
  ['cache_write_tokens', (row) => row.cacheCreationInputTokens],
  ['cache_read_tokens', (row) => row.cacheReadInputTokens],
  ['total_tokens', (row) => row.totalTokens],
  ['cost_usd', (row) => row.costUsd.toFixed(6)],
];

/** A report's rows as CSV (RFC 4180), one line per day and agent; `user_id` only in reports across users. */
export function usageCsv(report: UsageReport): string {
  const columns = report.userId === null ? csvColumns : csvColumns.filter(([name]) => name !== 'user_id');
  const lines = [columns.map(([name]) => name).join(',')];
  for (const row of report.rows) lines.push(columns.map(([, value]) => csvField(value(row))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  // A leading =, +, - or @ would be run as a formula by spreadsheets.
  const safe = /^[=+\-@]/.test(text) && typeof value === 'string' ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
