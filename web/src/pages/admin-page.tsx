import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, ApiError } from '../api/client.ts';
import type { Activity, AgentCeilingsState, AgentLimits, Replica, User } from '../api/types.ts';
import { ConfirmDialog } from '../components/dialog.tsx';
import { Spinner } from '../components/spinner.tsx';
import { timeAgo } from '../lib/format.ts';
import { useSession } from '../session.tsx';

export default function AdminPage() {
  const { user: me, agents } = useSession();
  const [users, setUsers] = useState<User[] | null>(null);
  const [activity, setActivity] = useState<Activity[] | null>(null);
  const [replicas, setReplicas] = useState<Replica[] | null>(null);
  const [disabling, setDisabling] = useState<User | null>(null);
  const [error, setError] = useState<string | null>(null);

  const loadUsers = useCallback(async () => setUsers((await api.users()).users), []);
  const loadActivity = useCallback(async () => setActivity((await api.activity()).conversations), []);
  const loadReplicas = useCallback(async () => setReplicas((await api.replicas()).replicas), []);
  useEffect(() => {
    void loadUsers().catch(() => setError('could not load users'));
    const refresh = (): void => {
      void loadActivity().catch(() => undefined);
      void loadReplicas().catch(() => undefined);
    };
    refresh();
    const timer = setInterval(refresh, 5000);
    return () => clearInterval(timer);
  }, [loadUsers, loadActivity, loadReplicas]);

  const update = async (user: User, patch: { role?: 'admin' | 'user'; disabled?: boolean }): Promise<void> => {
    setError(null);
    try {
      await api.updateUser(user.id, patch);
      await loadUsers();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'could not update the user');
    }
  };

  const agentName = (id: string | null | undefined): string => agents?.find((agent) => agent.id === id)?.name ?? id ?? '';

  return (
    <div className="page narrow-page">
      <h1>Administration</h1>
      <h2>Running now</h2>
      {activity === null ? <Spinner label="Loading activity" /> : null}
      {activity && activity.length === 0 ? <p className="muted">No agent is running and no sandbox is live.</p> : null}
      {activity && activity.length > 0 ? (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>User</th>
                <th>Conversation</th>
                <th>Agent</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {activity.map((entry) => (
                <tr key={entry.conversationId}>
                  <td>{entry.userEmail ?? entry.userId ?? '—'}</td>
                  <td title={entry.conversationId}>{entry.title ?? entry.conversationId}</td>
                  <td>{agentName(entry.agentId)}</td>
                  <td>
                    <span className={`badge${entry.busy ? ' running' : ''}`}>{entry.busy ? 'running a turn' : entry.paused ? 'paused' : 'idle sandbox'}</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}

      <h2>Server replicas</h2>
      {replicas === null ? <Spinner label="Loading replicas" /> : null}
      {replicas ? (
        <div className="table-wrap">
          <table className="table" aria-label="Server replicas">
            <thead>
              <tr>
                <th>Replica</th>
                <th>Version</th>
                <th>Host</th>
                <th>Conversations</th>
                <th>Heartbeat</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {replicas.map((replica) => (
                <tr key={replica.id} className={replica.live ? '' : 'revoked'}>
                  <td>{replica.id}</td>
                  <td>{replica.version}</td>
                  <td>
                    {replica.hostname} (pid {replica.pid})
                  </td>
                  <td>{replica.leases}</td>
                  <td>{timeAgo(replica.heartbeatAt)}</td>
                  <td>
                    <span className={`badge${replica.live && !replica.draining ? ' running' : ''}`}>
                      {!replica.live ? 'not answering' : replica.draining ? 'shutting down' : 'live'}
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}

      <h2>Users</h2>
      {error ? (
        <p className="error-text" role="alert">
          {error}
        </p>
      ) : null}
      {users === null ? <Spinner label="Loading users" /> : null}
      {users ? (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>Email</th>
                <th>Role</th>
                <th>Joined</th>
                <th>Status</th>
              </tr>
            </thead>
            <tbody>
              {users.map((user) => (
                <tr key={user.id} className={user.disabled ? 'revoked' : ''}>
                  <td>
                    {user.email}
                    {user.id === me.id ? <span className="muted"> (you)</span> : null}
                  </td>
                  <td>
                    <select
                      aria-label={`Role of ${user.email}`}
                      value={user.role}
                      disabled={user.id === me.id}
                      onChange={(event) => void update(user, { role: event.target.value as 'admin' | 'user' })}
                    >
                      <option value="user">user</option>
                      <option value="admin">admin</option>
                    </select>
                  </td>
                  <td>{timeAgo(user.createdAt)}</td>
                  <td>
                    {user.disabled ? (
                      <button type="button" className="button small" onClick={() => void update(user, { disabled: false })}>
                        Enable
                      </button>
                    ) : (
                      <button type="button" className="button small danger-text" disabled={user.id === me.id} onClick={() => setDisabling(user)}>
                        Disable
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <AgentCeilingsSection />
      <ConfirmDialog
        open={disabling !== null}
        title="Disable this user?"
        message={<>{disabling?.email} will be signed out and their tokens will stop working until you enable them again.</>}
        confirmLabel="Disable"
        danger
        onConfirm={() => {
          if (disabling) void update(disabling, { disabled: true });
          setDisabling(null);
        }}
        onCancel={() => setDisabling(null)}
      />
    </div>
  );
}

/** The ceilings of agents' memory, CPUs and turn time: agents over them are refused, older ones run clamped. */
function AgentCeilingsSection() {
  const [state, setState] = useState<AgentCeilingsState | null>(null);
  const [form, setForm] = useState<AgentLimits | null>(null);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [busy, setBusy] = useState(false);

  const show = (next: AgentCeilingsState): void => {
    setState(next);
    setForm(next.ceilings);
  };
  useEffect(() => {
    void api.adminAgentCeilings().then(show, () => setMessage({ text: 'could not load the agent limits', error: true }));
  }, []);

  const run = async (action: () => Promise<AgentCeilingsState>, done: string): Promise<void> => {
    setBusy(true);
    setMessage(null);
    try {
      show(await action());
      setMessage({ text: done, error: false });
    } catch (caught) {
      setMessage({ text: caught instanceof ApiError ? caught.message : 'could not save the agent limits', error: true });
    }
    setBusy(false);
  };
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    if (form) void run(() => api.setAgentCeilings(form), 'Saved: new and changed agents must fit; older agents run clamped.');
  };
  const setField = (key: keyof AgentLimits, value: number): void => setForm((current) => current && { ...current, [key]: value });

  return (
    <section aria-labelledby="agent-limits-heading">
      <h2 id="agent-limits-heading">Agent limits</h2>
      <p className="muted">
        The most any agent may be given. Agents over them cannot be saved; agents saved before a ceiling was lowered run at the ceiling.
        {state ? (state.source === 'administrator' ? ' Set by an administrator.' : ' From the server configuration (AGENTYARD_AGENT_MAX_*).') : null}
      </p>
      {form === null ? <Spinner label="Loading agent limits" /> : null}
      {form && state ? (
        <form className="form" onSubmit={submit}>
          <div className="form-row">
            <label>
              Memory (MiB)
              <input type="number" min={128} max={65536} required value={form.memoryMb} onChange={(event) => setField('memoryMb', Number(event.target.value))} />
            </label>
            <label>
              CPUs
              <input type="number" min={0.1} max={64} step={0.1} required value={form.cpus} onChange={(event) => setField('cpus', Number(event.target.value))} />
            </label>
            <label>
              Turn time (s)
              <input type="number" min={5} max={86400} required value={form.turnTimeoutSeconds} onChange={(event) => setField('turnTimeoutSeconds', Number(event.target.value))} />
            </label>
          </div>
          {message ? (
            <p className={message.error ? 'error-text' : 'muted'} role={message.error ? 'alert' : 'status'}>
              {message.text}
            </p>
          ) : null}
          <div className="card-actions">
            <button type="submit" className="button primary" disabled={busy}>
              Save limits
            </button>
            {state.source === 'administrator' ? (
              <button type="button" className="button" disabled={busy} onClick={() => void run(api.resetAgentCeilings, 'Back to the configured limits.')}>
                Use the configured limits ({state.defaults.memoryMb} MiB · {state.defaults.cpus} CPUs · {state.defaults.turnTimeoutSeconds} s)
              </button>
            ) : null}
          </div>
        </form>
      ) : null}
    </section>
  );
}
