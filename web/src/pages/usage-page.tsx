import { useEffect, useState } from 'react';
import { api, ApiError } from '../api/client.ts';
import type { QuotaReport, UsageReport } from '../api/types.ts';
import { Icon } from '../components/icons.tsx';
import { Spinner } from '../components/spinner.tsx';
import { formatCost, formatNumber } from '../lib/format.ts';
import { formatQuotaAmount, quotaFraction, quotaLabels } from '../lib/usage-format.ts';

/** The signed-in user's model usage this month and their quotas (GET /api/usage, GET /api/quota). */
export default function UsagePage() {
  const [usage, setUsage] = useState<UsageReport | null>(null);
  const [quota, setQuota] = useState<QuotaReport | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const failed = (caught: unknown): void => setError(caught instanceof ApiError ? caught.message : 'could not load your usage');
    api.usage().then(setUsage, failed);
    api.quota().then(setQuota, failed);
  }, []);

  return (
    <div className="page narrow-page usage-page">
      <div className="page-header">
        <h1>Usage</h1>
        <a className="button small" href="/api/usage?format=csv" download>
          <Icon name="download" size={14} /> Download CSV
        </a>
      </div>
      <p className="muted">
        {usage ? `From ${usage.from} to ${usage.to} (UTC). ` : ''}Costs are estimates from this installation’s model prices.
      </p>
      {error ? (
        <p className="error-text" role="alert">
          {error}
        </p>
      ) : null}
      {usage ? <Totals totals={usage.totals} /> : error ? null : <Spinner label="Loading your usage" />}

      <h2>Quotas</h2>
      {quota ? <Quotas quotas={quota.quotas} /> : error ? null : <Spinner label="Loading your quotas" />}

      <h2>By day and agent</h2>
      {usage && usage.rows.length === 0 ? <p className="muted">No model requests yet this month.</p> : null}
      {usage && usage.rows.length > 0 ? (
        <div className="table-wrap">
          <table className="table usage-rows">
            <thead>
              <tr>
                <th>Day</th>
                <th>Agent</th>
                <th className="number">Requests</th>
                <th className="number">Tokens</th>
                <th className="number">Cost</th>
              </tr>
            </thead>
            <tbody>
              {usage.rows.map((row) => (
                <tr key={`${row.day}:${row.agentId ?? ''}`}>
                  <td>{row.day}</td>
                  <td>{row.agentName ?? row.agentId ?? '—'}</td>
                  <td className="number">{formatNumber(row.requests)}</td>
                  <td className="number">{formatNumber(row.totalTokens)}</td>
                  <td className="number">{formatCost(row.costUsd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </div>
  );
}

function Totals({ totals }: { totals: UsageReport['totals'] }) {
  const items: Array<[string, string]> = [
    ['Total tokens', formatNumber(totals.totalTokens)],
    ['Input tokens', formatNumber(totals.inputTokens)],
    ['Output tokens', formatNumber(totals.outputTokens)],
    ['Cache writes', formatNumber(totals.cacheCreationInputTokens)],
    ['Cache reads', formatNumber(totals.cacheReadInputTokens)],
    ['Model requests', formatNumber(totals.requests)],
    ['Estimated cost', formatCost(totals.costUsd)],
  ];
  return (
    <dl className="usage-totals">
      {items.map(([label, value]) => (
        <div key={label} className="usage-total" data-total={label}>
          <dt className="label">{label}</dt>
          <dd className="value">{value}</dd>
        </div>
      ))}
    </dl>
  );
}

function Quotas({ quotas }: { quotas: QuotaReport['quotas'] }) {
  return (
    <div className="quota-list">
      {quotas.map((state) => {
        const fraction = quotaFraction(state.used, state.limit);
        const label = quotaLabels[state.quota];
        const used = formatQuotaAmount(state.quota, state.used);
        return (
          <div key={state.quota} className="quota" data-quota={state.quota}>
            <span>{label}</span>
            {fraction === null ? null : (
              <div
                className={`quota-meter${fraction >= 1 ? ' full' : ''}`}
                role="meter"
                aria-label={label}
                aria-valuemin={0}
                aria-valuemax={state.limit!}
                aria-valuenow={Math.min(state.used, state.limit!)}
              >
                <span style={{ width: `${Math.round(fraction * 100)}%` }} />
              </div>
            )}
            <span className="numbers">
              {state.limit === null ? `${used} used · no limit` : `${used} of ${formatQuotaAmount(state.quota, state.limit)}`}
              {state.resetsAt ? ` · resets ${new Date(state.resetsAt).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}` : ''}
            </span>
          </div>
        );
      })}
    </div>
  );
}
