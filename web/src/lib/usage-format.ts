import type { ModelChoices, QuotaName } from '../api/types.ts';
import { formatCost, formatNumber } from './format.ts';

export const quotaLabels: Record<QuotaName, string> = {
  tokensPerDay: 'Tokens today',
  tokensPerMonth: 'Tokens this month',
  costPerDayUsd: 'Cost today',
  costPerMonthUsd: 'Cost this month',
  concurrentSandboxes: 'Sandboxes running now',
  sandboxHoursPerMonth: 'Sandbox hours this month',
};

/** A quota's amount in its own unit: tokens, dollars, sandboxes or hours. */
export function formatQuotaAmount(quota: QuotaName, value: number): string {
  if (quota === 'costPerDayUsd' || quota === 'costPerMonthUsd') return formatCost(value);
  if (quota === 'sandboxHoursPerMonth') return `${value.toFixed(value < 10 ? 2 : 1)} h`;
  return formatNumber(value);
}

/** How much of a limit is used, 0 to 1 (null: no limit); a limit of 0 counts as used up. */
export function quotaFraction(used: number, limit: number | null): number | null {
  if (limit === null) return null;
  if (limit <= 0) return 1;
  return Math.min(1, Math.max(0, used / limit));
}

/** A model's option text: its id, and its price per million input and output tokens when known. */
export function modelOptionLabel(model: ModelChoices['models'][number]): string {
  if (!model.price) return model.id;
  return `${model.id} · $${model.price.input} / $${model.price.output} per M tokens in / out`;
}
