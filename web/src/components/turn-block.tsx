import { memo, useRef, useState } from 'react';
import type { TurnView } from '../lib/conversation-state.ts';
import { formatCost, formatDuration, formatNumber } from '../lib/format.ts';
import { Icon } from './icons.tsx';
import { Markdown } from './markdown.tsx';
import { ToolCard } from './tool-card.tsx';

const endedLabels: Partial<Record<TurnView['status'], string>> = { failed: 'Failed', interrupted: 'Stopped', timed_out: 'Timed out' };

/** One turn: the user's message, then the agent's text and tool cards, errors in place and the usage. */
export const TurnBlock = memo(function TurnBlock({ turn, onRetry }: { turn: TurnView; onRetry(text: string): void }) {
  const ended = endedLabels[turn.status];
  return (
    <section className="turn" data-turn={turn.id} data-status={turn.status}>
      <div className={`message user${turn.status === 'queued' ? ' queued' : ''}`}>
        <div className="bubble">{turn.input}</div>
        {turn.status === 'queued' ? <span className="badge">queued</span> : null}
      </div>
      {turn.items.length > 0 ? (
        <div className="message assistant">
          {turn.items.map((item) =>
            item.kind === 'text' ? (
              <Markdown key={item.id} text={item.text} streaming={!item.done} />
            ) : (
              <ToolCard key={item.id} tool={item} />
            ),
          )}
        </div>
      ) : null}
      {turn.errors.map((error, index) => (
        <div key={index} className="turn-error">
          <span>
            <strong>{error.code}</strong>: {error.message}
          </span>
          {/* A limit notice in a turn that went on (out of memory, a full workspace) has nothing to retry. */}
          {index === turn.errors.length - 1 && ended ? (
            <RetryButton onRetry={() => onRetry(turn.input)} />
          ) : null}
        </div>
      ))}
      {ended && turn.errors.length === 0 ? (
        <div className="turn-error subtle">
          <span>{ended}.</span>
          <RetryButton onRetry={() => onRetry(turn.input)} />
        </div>
      ) : null}
      {turn.usage || turn.costUsd !== null ? (
        <div className="turn-usage" title="Tokens and cost of this turn">
          {turn.usage ? (
            <>
              {formatNumber(turn.usage.inputTokens + turn.usage.cacheReadInputTokens + turn.usage.cacheCreationInputTokens)} in ·{' '}
              {formatNumber(turn.usage.outputTokens)} out
              {turn.usage.cacheReadInputTokens ? <> · {formatNumber(turn.usage.cacheReadInputTokens)} cached</> : null}
            </>
          ) : null}
          {turn.costUsd !== null ? <> · {formatCost(turn.costUsd)}</> : null}
          {turn.durationMs ? <> · {formatDuration(turn.durationMs)}</> : null}
        </div>
      ) : null}
    </section>
  );
});

/** Sends the turn's message again, once: a second click (or a double click) does not send it twice. */
function RetryButton({ onRetry }: { onRetry(): void }) {
  const [retried, setRetried] = useState(false);
  // Read at the click itself, so that two clicks before a re-render still send once.
  const sent = useRef(false);
  return (
    <button
      type="button"
      className="button small"
      disabled={retried}
      onClick={() => {
        if (sent.current) return;
        sent.current = true;
        setRetried(true);
        onRetry();
      }}
    >
      <Icon name="retry" size={14} /> {retried ? 'Sent again' : 'Retry'}
    </button>
  );
}
