import { diffLines } from 'diff';
import { useMemo } from 'react';

interface Line {
  kind: 'added' | 'removed' | 'context';
  text: string;
}

const maxLines = 400;

/** A unified line diff of two texts (a new file is all additions). */
export function DiffView({ before, after }: { before: string; after: string }) {
  const lines = useMemo(() => {
    const result: Line[] = [];
    for (const part of diffLines(before, after)) {
      const kind: Line['kind'] = part.added ? 'added' : part.removed ? 'removed' : 'context';
      const partLines = part.value.replace(/\n$/, '').split('\n');
      if (kind === 'context' && partLines.length > 6) {
        result.push(...partLines.slice(0, 3).map((text) => ({ kind, text })));
        result.push({ kind, text: `⋯ ${partLines.length - 6} unchanged lines` });
        result.push(...partLines.slice(-3).map((text) => ({ kind, text })));
      } else result.push(...partLines.map((text) => ({ kind, text })));
    }
    return result;
  }, [before, after]);
  const added = lines.filter((line) => line.kind === 'added').length;
  const removed = lines.filter((line) => line.kind === 'removed').length;
  return (
    <div className="diff">
      <div className="diff-stats">
        <span className="added">+{added}</span> <span className="removed">−{removed}</span>
      </div>
      <pre>
        {lines.slice(0, maxLines).map((line, index) => (
          <div key={index} className={`diff-line ${line.kind}`}>
            <span className="diff-sign">{line.kind === 'added' ? '+' : line.kind === 'removed' ? '−' : ' '}</span>
            {line.text || ' '}
          </div>
        ))}
        {lines.length > maxLines ? <div className="diff-line context">⋯ {lines.length - maxLines} more lines</div> : null}
      </pre>
    </div>
  );
}
