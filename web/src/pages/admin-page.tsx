import { useCallback, useEffect, useState } from 'react';
import { api, ApiError } from '../api/client.ts';
import type { Activity, User } from '../api/types.ts';
import { ConfirmDialog } from '../components/dialog.tsx';
import { Spinner } from '../components/spinner.tsx';
import { timeAgo } from '../lib/format.ts';
import { useSession } from '../session.tsx';

export default function AdminPage() {
  const { user: me, agents } = useSession();
  const [users, setUsers] = useState<User[] | null>(null);
  const [activity, setActivity] = useState<Activity[] | null>(null);
  const [disabling, setDisabling] = useState<User | null>(null);
  const [error, setError] = useState<string | null>(null);

  const loadUsers = useCallback(async () => setUsers((await api.users()).users), []);
  const loadActivity = useCallback(async () => setActivity((await api.activity()).conversations), []);
  useEffect(() => {
    void loadUsers().catch(() => setError('could not load users'));
    void loadActivity().catch(() => undefined);
    const timer = setInterval(() => void loadActivity().catch(() => undefined), 5000);
    return () => clearInterval(timer);
  }, [loadUsers, loadActivity]);

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
