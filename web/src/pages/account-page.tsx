import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, ApiError } from '../api/client.ts';
import type { ApiToken } from '../api/types.ts';
import { ConfirmDialog } from '../components/dialog.tsx';
import { Icon } from '../components/icons.tsx';
import { Spinner } from '../components/spinner.tsx';
import { timeAgo } from '../lib/format.ts';
import { useSession } from '../session.tsx';

export default function AccountPage() {
  const { user } = useSession();
  const [tokens, setTokens] = useState<ApiToken[] | null>(null);
  const [name, setName] = useState('');
  const [days, setDays] = useState('');
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [revoking, setRevoking] = useState<ApiToken | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => setTokens((await api.tokens()).tokens), []);
  useEffect(() => {
    void load().catch(() => setError('could not load your tokens'));
  }, [load]);

  const create = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setError(null);
    try {
      const token = await api.createToken(name.trim(), days ? Number(days) : undefined);
      setCreated({ name: token.name, token: token.token });
      setCopied(false);
      setName('');
      setDays('');
      await load();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'could not create the token');
    }
  };
  const revoke = async (): Promise<void> => {
    if (!revoking) return;
    try {
      await api.revokeToken(revoking.id);
      await load();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'could not revoke the token');
    }
    setRevoking(null);
  };

  return (
    <div className="page narrow-page">
      <h1>Account</h1>
      <dl className="facts">
        <dt>Email</dt>
        <dd>{user.email}</dd>
        <dt>Role</dt>
        <dd>{user.role}</dd>
        <dt>Member since</dt>
        <dd>{new Date(user.createdAt).toLocaleDateString()}</dd>
      </dl>

      <ChangePassword />

      <OwnCredential />

      <h2>API tokens</h2>
      <p className="muted">
        Use a token as <code>Authorization: Bearer …</code> to call the API from scripts. The API is described at{' '}
        <a href="/api/openapi.json" target="_blank" rel="noreferrer">
          /api/openapi.json
        </a>
        .
      </p>
      <form className="form inline-form" onSubmit={(event) => void create(event)}>
        <label>
          Name
          <input required maxLength={100} value={name} onChange={(event) => setName(event.target.value)} placeholder="ci, laptop…" />
        </label>
        <label>
          Expires in days <span className="muted">(optional)</span>
          <input type="number" min={1} max={3650} value={days} onChange={(event) => setDays(event.target.value)} />
        </label>
        <button type="submit" className="button primary">
          <Icon name="plus" /> Create token
        </button>
      </form>
      {created ? (
        <div className="banner success" role="status">
          <p>
            <strong>Token “{created.name}” created.</strong> Copy it now: it will not be shown again.
          </p>
          <div className="token-box">
            <code data-testid="new-token">{created.token}</code>
            <button
              type="button"
              className="button small"
              onClick={() => void navigator.clipboard?.writeText(created.token).then(() => setCopied(true), () => undefined)}
            >
              <Icon name="copy" size={14} /> {copied ? 'Copied' : 'Copy'}
            </button>
            <button type="button" className="button small ghost" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </div>
      ) : null}
      {error ? (
        <p className="error-text" role="alert">
          {error}
        </p>
      ) : null}
      {tokens === null ? <Spinner label="Loading tokens" /> : null}
      {tokens && tokens.length === 0 ? <p className="muted">No tokens yet.</p> : null}
      {tokens && tokens.length > 0 ? (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Token</th>
                <th>Created</th>
                <th>Last used</th>
                <th>Expires</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {tokens.map((token) => (
                <tr key={token.id} className={token.revokedAt ? 'revoked' : ''}>
                  <td>{token.name}</td>
                  <td>
                    <code>{token.prefix}…</code>
                  </td>
                  <td>{timeAgo(token.createdAt)}</td>
                  <td>{token.lastUsedAt ? timeAgo(token.lastUsedAt) : 'never'}</td>
                  <td>{token.expiresAt ? new Date(token.expiresAt).toLocaleDateString() : 'never'}</td>
                  <td>
                    {token.revokedAt ? (
                      <span className="badge">revoked</span>
                    ) : (
                      <button type="button" className="button small danger-text" onClick={() => setRevoking(token)}>
                        Revoke
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
        open={revoking !== null}
        title="Revoke this token?"
        message={<>Scripts using “{revoking?.name}” will stop working at once.</>}
        confirmLabel="Revoke"
        danger
        onConfirm={() => void revoke()}
        onCancel={() => setRevoking(null)}
      />
    </div>
  );
}

/** Changes the password; the server signs out every other browser and keeps this one signed in. */
function ChangePassword() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [repeated, setRepeated] = useState('');
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<{ ok: boolean; message: string } | null>(null);

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setOutcome(null);
    if (next !== repeated) {
      setOutcome({ ok: false, message: 'the new passwords do not match' });
      return;
    }
    setBusy(true);
    try {
      await api.changePassword(current, next);
      setCurrent('');
      setNext('');
      setRepeated('');
      setOutcome({ ok: true, message: 'Password changed. Every other browser signed in to your account was signed out; API tokens still work.' });
    } catch (caught) {
      setOutcome({ ok: false, message: caught instanceof ApiError ? caught.message : 'could not change the password' });
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <h2>Password</h2>
      <form className="form inline-form" aria-label="Change password" onSubmit={(event) => void submit(event)}>
        <label>
          Current password
          <input type="password" autoComplete="current-password" required value={current} onChange={(event) => setCurrent(event.target.value)} />
        </label>
        <label>
          New password
          <input type="password" autoComplete="new-password" required minLength={8} maxLength={200} value={next} onChange={(event) => setNext(event.target.value)} />
        </label>
        <label>
          Repeat new password
          <input type="password" autoComplete="new-password" required minLength={8} maxLength={200} value={repeated} onChange={(event) => setRepeated(event.target.value)} />
        </label>
        <button type="submit" className="button primary" disabled={busy}>
          Change password
        </button>
      </form>
      {outcome ? (
        <p className={outcome.ok ? 'small' : 'error-text'} role={outcome.ok ? 'status' : 'alert'}>
          {outcome.message}
        </p>
      ) : null}
    </>
  );
}

/** The user's own Anthropic key or OAuth token, where the server can store one (encrypted; never shown again). */
function OwnCredential() {
  const [info, setInfo] = useState<{ model: { kind: string } | null; canStore: boolean } | null>(null);
  const [kind, setKind] = useState<'api-key' | 'oauth-token'>('api-key');
  const [value, setValue] = useState('');
  const [message, setMessage] = useState<string | null>(null);
  const load = useCallback(() => api.ownCredentials().then(setInfo, () => setInfo(null)), []);
  useEffect(() => void load(), [load]);
  if (!info) return null;

  const save = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setMessage(null);
    try {
      await api.setOwnCredential(kind, value.trim());
      setValue('');
      setMessage('Saved. Your turns use it from the next model request on.');
      await load();
    } catch (caught) {
      setMessage(caught instanceof ApiError ? caught.message : 'could not save the key');
    }
  };
  const forget = async (): Promise<void> => {
    await api.deleteOwnCredential().catch(() => undefined);
    setMessage('Removed: the platform’s credential is used again.');
    await load();
  };

  return (
    <>
      <h2>Your model key</h2>
      <p className="muted">
        {info.model
          ? `Your own ${info.model.kind === 'api-key' ? 'API key' : 'OAuth token'} is used for your turns. It is stored encrypted and never shown again.`
          : 'Your turns use the platform’s credential. You may bring your own Anthropic API key or Claude OAuth token instead.'}
      </p>
      {info.canStore ? (
        <form className="form inline-form" onSubmit={(event) => void save(event)}>
          <label>
            Kind
            <select value={kind} onChange={(event) => setKind(event.target.value as 'api-key' | 'oauth-token')}>
              <option value="api-key">Anthropic API key</option>
              <option value="oauth-token">Claude OAuth token</option>
            </select>
          </label>
          <label>
            Value
            <input type="password" autoComplete="off" required minLength={8} value={value} onChange={(event) => setValue(event.target.value)} />
          </label>
          <button type="submit" className="button primary">
            {info.model ? 'Replace' : 'Save'}
          </button>
          {info.model ? (
            <button type="button" className="button danger-text" onClick={() => void forget()}>
              Remove
            </button>
          ) : null}
        </form>
      ) : (
        <p className="muted small">This server cannot store personal keys (its administrator has not set AGENTYARD_SECRET_KEY).</p>
      )}
      {message ? <p className="small">{message}</p> : null}
    </>
  );
}
