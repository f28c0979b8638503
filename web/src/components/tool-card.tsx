import { memo, useState } from 'react';
import type { ToolItem } from '../lib/conversation-state.ts';
import { DiffView } from './diff-view.tsx';
import { Spinner } from './spinner.tsx';

const outputPreviewBytes = 20_000;

type Input = Record<string, unknown>;
const asInput = (input: unknown): Input => (input && typeof input === 'object' ? (input as Input) : {});
const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** One tool use: Bash shows its command and output, Write and Edit their file and a diff, others input and output. */
export const ToolCard = memo(function ToolCard({ tool }: { tool: ToolItem }) {
  const input = asInput(tool.input);
  const running = tool.output === null;
  const state = running ? 'running' : tool.isError ? 'error' : 'done';
  let summary: string;
  let body;
  switch (tool.name) {
    case 'Bash':
      summary = text(input.description) || text(input.command).split('\n')[0] || 'command';
      body = (
        <>
          <pre className="tool-command">
            <span className="prompt">$ </span>
            {text(input.command)}
          </pre>
          <Output output={tool.output} isError={tool.isError} label="Output" />
        </>
      );
      break;
    case 'Write':
      summary = text(input.file_path);
      body = (
        <>
          <DiffView before="" after={text(input.content)} />
          {tool.isError ? <Output output={tool.output} isError label="Error" /> : null}
        </>
      );
      break;
    case 'Edit':
      summary = text(input.file_path);
      body = (
        <>
          <DiffView before={text(input.old_string)} after={text(input.new_string)} />
          {tool.isError ? <Output output={tool.output} isError label="Error" /> : null}
        </>
      );
      break;
    case 'MultiEdit': {
      summary = text(input.file_path);
      const edits = Array.isArray(input.edits) ? (input.edits as Input[]) : [];
      body = (
        <>
          {edits.map((edit, index) => (
            <DiffView key={index} before={text(edit.old_string)} after={text(edit.new_string)} />
          ))}
          {tool.isError ? <Output output={tool.output} isError label="Error" /> : null}
        </>
      );
      break;
    }
    default:
      summary = text(input.file_path) || text(input.pattern) || text(input.path) || text(input.url) || text(input.description) || '';
      body = (
        <>
          <details className="tool-section">
            <summary>Input</summary>
            <pre className="tool-output">{JSON.stringify(tool.input, null, 2)}</pre>
          </details>
          <Output output={tool.output} isError={tool.isError} label="Output" />
        </>
      );
  }
  return (
    <div className={`tool-card ${state}`} data-tool={tool.name}>
      <div className="tool-header">
        <span className="tool-name">{tool.name}</span>
        <span className="tool-summary" title={summary}>
          {summary}
        </span>
        <span className="tool-state">{running ? <Spinner label="running" /> : tool.isError ? 'failed' : '✓'}</span>
      </div>
      <div className="tool-body">{body}</div>
    </div>
  );
});

function Output({ output, isError, label }: { output: string | null; isError: boolean; label: string }) {
  const [all, setAll] = useState(false);
  if (output === null) return null;
  const lines = output.split('\n').length;
  const shown = all ? output : output.slice(0, outputPreviewBytes);
  return (
    <details className="tool-section" open={lines <= 30}>
      <summary>
        {label} <span className="muted">({output ? `${lines} line${lines === 1 ? '' : 's'}` : 'empty'})</span>
      </summary>
      <pre className={`tool-output${isError ? ' error' : ''}`}>{shown || <span className="muted">(no output)</span>}</pre>
      {!all && output.length > outputPreviewBytes ? (
        <button type="button" className="button small" onClick={() => setAll(true)}>
          Show all {output.length.toLocaleString()} characters
        </button>
      ) : null}
    </details>
  );
}
