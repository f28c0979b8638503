import { useEffect, useState } from 'react';
import { api } from '../api/client.ts';
import { Link } from '../router.tsx';
import { useSession } from '../session.tsx';

/** Shown when no model credential would serve this user's turns: every turn would fail, so say how to fix it. */
export function CredentialBanner() {
  const { status, user } = useSession();
  const [own, setOwn] = useState<{ model: unknown; canStore: boolean } | null | undefined>(undefined);
  const missing = status?.modelCredential !== null && status?.modelCredential !== undefined && !status.modelCredential.configured;

  useEffect(() => {
    // A user's own key (where the server supports them) serves their turns too.
    if (missing) api.ownCredentials().then(setOwn, () => setOwn(null));
  }, [missing]);

  if (!missing || own === undefined || own?.model) return null;
  return (
    <div className="banner warning" role="alert">
      <strong>No model credential is configured</strong>, so agents cannot answer yet.{' '}
      {user.role === 'admin' ? (
        <>
          Start the server with <code>ANTHROPIC_API_KEY=sk-ant-… npm start</code> (or <code>CLAUDE_CODE_OAUTH_TOKEN</code> from{' '}
          <code>claude setup-token</code>), then reload. <code>npm run agentyard -- doctor</code> checks the setup.
        </>
      ) : (
        <>Ask your administrator to set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN on the server.</>
      )}
      {own?.canStore ? (
        <>
          {' '}
          Or add your own key on the <Link to="/account">Account</Link> page.
        </>
      ) : null}
    </div>
  );
}
