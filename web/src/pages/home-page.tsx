import { useState } from 'react';
import { CredentialBanner } from '../components/credential-banner.tsx';
import { Icon } from '../components/icons.tsx';
import { NewConversationDialog } from '../components/new-conversation-dialog.tsx';
import { useSession } from '../session.tsx';

export function HomePage() {
  const { conversations } = useSession();
  const [creating, setCreating] = useState(false);
  const empty = conversations !== null && conversations.length === 0;
  return (
    <div className="page home">
      <CredentialBanner />
      <div className="empty-state">
        <img src="/favicon.svg" alt="" width={48} height={48} />
        {empty ? (
          <>
            <h1>No conversations yet</h1>
            <p className="muted">Start one: pick an agent, describe a task, and watch it work in its own sandbox — its files and a terminal are one click away.</p>
          </>
        ) : (
          <>
            <h1>Pick a conversation</h1>
            <p className="muted">Choose one on the left, or start a new one.</p>
          </>
        )}
        <button type="button" className="button primary" onClick={() => setCreating(true)}>
          <Icon name="plus" /> New conversation
        </button>
      </div>
      <NewConversationDialog open={creating} onClose={() => setCreating(false)} />
    </div>
  );
}
