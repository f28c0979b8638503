import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError } from '../api/client.ts';
import type { Agent, AgentDefinition, AgentLimits } from '../api/types.ts';
import { ConfirmDialog, Dialog } from '../components/dialog.tsx';
import { Icon } from '../components/icons.tsx';
import { ModelSelect } from '../components/model-select.tsx';
import { Spinner } from '../components/spinner.tsx';
import { StartConversationButton } from '../components/start-conversation-button.tsx';
import { ceilingProblem, withinCeilings } from '../lib/agent-ceilings.ts';
import { useSession } from '../session.tsx';

const metadata = new Set(['id', 'ownerId', 'builtin', 'createdAt', 'updatedAt']);

/** An agent's definition without its metadata; fields this page does not edit ride along unchanged. */
function definitionOf(agent: Agent): AgentDefinition {
  return Object.fromEntries(Object.entries(agent).filter(([key]) => !metadata.has(key))) as AgentDefinition;
}

const blank: AgentDefinition = {
  name: '',
  description: '',
  instructions: '',
  model: 'claude-sonnet-5',
  allowedTools: [],
  disallowedTools: [],
  maxTurns: null,
  limits: { memoryMb: 2048, cpus: 2, turnTimeoutSeconds: 900 },
};

type Editing = { mode: 'create'; definition: AgentDefinition } | { mode: 'edit'; agent: Agent; definition: AgentDefinition };

export default function AgentsPage() {
  const { agents, refreshAgents, status } = useSession();
  const [editing, setEditing] = useState<Editing | null>(null);
  const [deleting, setDeleting] = useState<Agent | null>(null);
  const [error, setError] = useState<string | null>(null);
  /** The installation's ceilings of agents' limits, read again whenever the editor opens (administrators change them). */
  const [ceilings, setCeilings] = useState<AgentLimits | null>(null);
  const editorOpen = editing !== null;
  useEffect(() => {
    void api.agentCeilings().then((answer) => setCeilings(answer.ceilings), () => undefined);
  }, [editorOpen]);

  const duplicate = (agent: Agent): void => setEditing({ mode: 'create', definition: { ...definitionOf(agent), name: `${agent.name} (copy)`.slice(0, 100) } });

  const remove = async (): Promise<void> => {
    if (!deleting) return;
    try {
      await api.deleteAgent(deleting.id);
      await refreshAgents();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'could not delete the agent');
    }
    setDeleting(null);
  };

  return (
    <div className="page narrow-page">
      <div className="page-header">
        <h1>Agents</h1>
        <button type="button" className="button primary" onClick={() => setEditing({ mode: 'create', definition: { ...blank, limits: withinCeilings(blank.limits, ceilings) } })}>
          <Icon name="plus" /> New agent
        </button>
      </div>
      <p className="muted">An agent is instructions, a model, the tools it may use and its limits. Each new conversation picks one.</p>
      {error ? (
        <p className="error-text" role="alert">
          {error}
        </p>
      ) : null}
      {agents === null ? <Spinner label="Loading agents" /> : null}
      <div className="cards">
        {(agents ?? []).map((agent) => (
          <article key={agent.id} className="card agent-card">
            <div className="card-header">
              <h2>{agent.name}</h2>
              {agent.builtin ? <span className="badge">built-in</span> : null}
            </div>
            {agent.description ? <p>{agent.description}</p> : null}
            <dl className="facts">
              <dt>Model</dt>
              <dd>
                <code>{agent.model}</code>
              </dd>
              <dt>Tools</dt>
              <dd>{agent.allowedTools.length ? agent.allowedTools.join(', ') : 'all'}{agent.disallowedTools.length ? ` · not ${agent.disallowedTools.join(', ')}` : ''}</dd>
              <dt>Limits</dt>
              <dd>
                {agent.limits.memoryMb} MiB · {agent.limits.cpus} CPU · {agent.limits.turnTimeoutSeconds} s per turn{agent.maxTurns ? ` · ${agent.maxTurns} steps` : ''}
                <ClampedNote limits={agent.limits} ceilings={ceilings} />
              </dd>
              {status?.sandbox.runtimes.length ? (
                <>
                  <dt>Sandbox</dt>
                  <dd>{runtimeLabel(agent.sandboxRuntime ?? 'default', status.sandbox.defaultRuntime)}</dd>
                </>
              ) : null}
            </dl>
            <div className="card-actions">
              <StartConversationButton agentId={agent.id} agentName={agent.name} />
              {!agent.builtin ? (
                <button type="button" className="button small" onClick={() => setEditing({ mode: 'edit', agent, definition: definitionOf(agent) })}>
                  <Icon name="edit" size={14} /> Edit
                </button>
              ) : null}
              <button type="button" className="button small" onClick={() => duplicate(agent)}>
                <Icon name="copy" size={14} /> Duplicate
              </button>
              {!agent.builtin ? (
                <button type="button" className="button small danger-text" onClick={() => setDeleting(agent)}>
                  <Icon name="trash" size={14} /> Delete
                </button>
              ) : null}
            </div>
          </article>
        ))}
      </div>
      {editing ? (
        <AgentEditor
          editing={editing}
          ceilings={ceilings}
          runtimes={status?.sandbox.runtimes ?? []}
          defaultRuntime={status?.sandbox.defaultRuntime ?? null}
          onClose={() => setEditing(null)}
          onSaved={async () => {
            await refreshAgents();
            setEditing(null);
          }}
        />
      ) : null}
      <ConfirmDialog
        open={deleting !== null}
        title="Delete this agent?"
        message={<>“{deleting?.name}” will be deleted. Conversations that use it must be deleted first.</>}
        confirmLabel="Delete"
        danger
        onConfirm={() => void remove()}
        onCancel={() => setDeleting(null)}
      />
    </div>
  );
}

const toolList = (text: string): string[] =>
  text
    .split(/[\n,]/)
    .map((tool) => tool.trim())
    .filter(Boolean);

const runtimeNames = { runc: 'runc (containers)', runsc: 'gVisor (runsc, its own kernel)' } as const;

function runtimeLabel(runtime: 'default' | 'runc' | 'runsc', installationDefault: 'runc' | 'runsc' | null): string {
  if (runtime !== 'default') return runtimeNames[runtime];
  return installationDefault ? `installation default: ${runtimeNames[installationDefault]}` : 'installation default';
}

/** Says what an agent over a ceiling lowered since it was saved runs at. */
function ClampedNote({ limits, ceilings }: { limits: AgentLimits; ceilings: AgentLimits | null }) {
  if (!ceilingProblem(limits, ceilings)) return null;
  const clamped = withinCeilings(limits, ceilings);
  return (
    <span className="muted">
      {' '}
      (runs at this installation’s ceilings: {clamped.memoryMb} MiB · {clamped.cpus} CPU · {clamped.turnTimeoutSeconds} s)
    </span>
  );
}

function AgentEditor(props: {
  editing: Editing;
  /** The highest limits allowed here; null while unknown (the server checks them too). */
  ceilings: AgentLimits | null;
  runtimes: Array<'runc' | 'runsc'>;
  defaultRuntime: 'runc' | 'runsc' | null;
  onClose(): void;
  onSaved(): Promise<void>;
}) {
  const { editing, ceilings, runtimes, defaultRuntime, onClose, onSaved } = props;
  const [form, setForm] = useState(() => ({
    ...editing.definition,
    allowedText: editing.definition.allowedTools.join(', '),
    disallowedText: editing.definition.disallowedTools.join(', '),
  }));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const set = (patch: Partial<typeof form>): void => setForm((current) => ({ ...current, ...patch }));
  const setLimit = (key: keyof AgentDefinition['limits'], value: number): void => setForm((current) => ({ ...current, limits: { ...current.limits, [key]: value } }));

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const problem = ceilingProblem(form.limits, ceilings);
    if (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    setError(null);
    const { allowedText, disallowedText, ...rest } = form;
    const definition: AgentDefinition = { ...rest, allowedTools: toolList(allowedText), disallowedTools: toolList(disallowedText) };
    try {
      if (editing.mode === 'create') await api.createAgent(definition);
      else await api.updateAgent(editing.agent.id, definition);
      await onSaved();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'could not save the agent');
      setBusy(false);
    }
  };

  return (
    <Dialog open title={editing.mode === 'create' ? 'New agent' : `Edit ${editing.agent.name}`} onClose={onClose}>
      <form className="form agent-form" onSubmit={(event) => void submit(event)}>
        <label>
          Name
          <input required maxLength={100} value={form.name} onChange={(event) => set({ name: event.target.value })} />
        </label>
        <label>
          Description
          <input maxLength={2000} value={form.description} onChange={(event) => set({ description: event.target.value })} />
        </label>
        <label>
          Instructions <span className="muted">(appended to Claude Code’s system prompt)</span>
          <textarea rows={6} value={form.instructions} onChange={(event) => set({ instructions: event.target.value })} />
        </label>
        <ModelSelect value={form.model} onChange={(model) => set({ model })} />
        <div className="form-row">
          <label>
            Allowed tools <span className="muted">(empty: all)</span>
            <input value={form.allowedText} onChange={(event) => set({ allowedText: event.target.value })} placeholder="Bash, Read, Write, Edit" />
          </label>
          <label>
            Disallowed tools
            <input value={form.disallowedText} onChange={(event) => set({ disallowedText: event.target.value })} placeholder="WebFetch" />
          </label>
        </div>
        <div className="form-row">
          <label>
            Memory (MiB){ceilings ? <span className="muted"> (at most {ceilings.memoryMb})</span> : null}
            <input type="number" min={128} max={ceilings?.memoryMb ?? 65536} required value={form.limits.memoryMb} onChange={(event) => setLimit('memoryMb', Number(event.target.value))} />
          </label>
          <label>
            CPUs{ceilings ? <span className="muted"> (at most {ceilings.cpus})</span> : null}
            <input type="number" min={0.1} max={ceilings?.cpus ?? 64} step={0.1} required value={form.limits.cpus} onChange={(event) => setLimit('cpus', Number(event.target.value))} />
          </label>
          <label>
            Turn timeout (s){ceilings ? <span className="muted"> (at most {ceilings.turnTimeoutSeconds})</span> : null}
            <input type="number" min={5} max={ceilings?.turnTimeoutSeconds ?? 86400} required value={form.limits.turnTimeoutSeconds} onChange={(event) => setLimit('turnTimeoutSeconds', Number(event.target.value))} />
          </label>
          <label>
            Max steps <span className="muted">(empty: no limit)</span>
            <input type="number" min={1} max={1000} value={form.maxTurns ?? ''} onChange={(event) => set({ maxTurns: event.target.value ? Number(event.target.value) : null })} />
          </label>
        </div>
        {runtimes.length > 0 ? (
          <label>
            Sandbox runtime
            <select value={form.sandboxRuntime ?? 'default'} onChange={(event) => set({ sandboxRuntime: event.target.value as 'default' | 'runc' | 'runsc' })}>
              {(['default', ...runtimes] as const).map((runtime) => (
                <option key={runtime} value={runtime}>
                  {runtimeLabel(runtime, defaultRuntime)}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        {error ? (
          <p className="error-text" role="alert">
            {error}
          </p>
        ) : null}
        <div className="dialog-footer">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy}>
            {editing.mode === 'create' ? 'Create agent' : 'Save'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
