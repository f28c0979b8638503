import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError } from '../api/client.ts';
import type { Status, User } from '../api/types.ts';

export function SignInPage({ onSignedIn }: { onSignedIn(user: User): void }) {
  const [mode, setMode] = useState<'signin' | 'register'>('signin');
  const [status, setStatus] = useState<Status | null>(null);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [inviteCode, setInviteCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void api.status().then((loaded) => {
      setStatus(loaded);
      // A new server has no account yet: the first visitor is here to create it (and becomes its administrator).
      if (!loaded.hasAccounts) setMode('register');
    }, () => undefined);
  }, []);

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { user } = mode === 'signin' ? await api.login(email, password) : await api.register(email, password, inviteCode || undefined);
      onSignedIn(user);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'something went wrong');
    } finally {
      setBusy(false);
    }
  };

  const registering = mode === 'register';
  return (
    <div className="auth-page">
      <form className="auth-card form" onSubmit={(event) => void submit(event)}>
        <div className="auth-brand">
          <img src="/favicon.svg" alt="" width={36} height={36} />
          <h1>Agentyard</h1>
        </div>
        <p className="muted">Claude Code agents in isolated sandboxes.</p>
        <div className="segmented" role="tablist">
          <button type="button" role="tab" aria-selected={!registering} className={!registering ? 'active' : ''} onClick={() => setMode('signin')}>
            Sign in
          </button>
          <button type="button" role="tab" aria-selected={registering} className={registering ? 'active' : ''} onClick={() => setMode('register')}>
            Create account
          </button>
        </div>
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(event) => setEmail(event.target.value)} />
        </label>
        <label>
          Password
          <input
            type="password"
            autoComplete={registering ? 'new-password' : 'current-password'}
            required
            minLength={registering ? 8 : undefined}
            value={password}
            onChange={(event) => setPassword(event.target.value)}
          />
        </label>
        {registering && status?.registration === 'invite' ? (
          <label>
            Invite code
            <input value={inviteCode} onChange={(event) => setInviteCode(event.target.value)} />
          </label>
        ) : null}
        {registering ? (
          <p className="muted small">
            {status?.registration === 'closed'
              ? 'Registration is closed on this server; only the very first account can still be created.'
              : 'The first account on a new server becomes its administrator.'}
          </p>
        ) : null}
        {error ? (
          <p className="error-text" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" className="button primary wide" disabled={busy}>
          {registering ? 'Create account' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}
