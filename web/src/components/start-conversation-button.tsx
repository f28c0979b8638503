import { useState } from 'react';
import { api, ApiError } from '../api/client.ts';
import { navigate } from '../router.tsx';
import { useSession } from '../session.tsx';
import { Icon } from './icons.tsx';
import { lastAgentKey } from './new-conversation-dialog.tsx';

/** Starts a new conversation with this agent and opens it. */
export function StartConversationButton({ agentId, agentName }: { agentId: string; agentName: string }) {
  const { refreshConversations } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const start = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      const created = await api.createConversation({ agentId });
      localStorage.setItem(lastAgentKey, agentId);
      await refreshConversations();
      navigate(`/c/${created.id}`);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'could not start the conversation');
      setBusy(false);
    }
  };

  return (
    <>
      <button type="button" className="button small primary" disabled={busy} onClick={() => void start()} aria-label={`Start a conversation with ${agentName}`}>
        <Icon name="plus" size={14} /> Start a conversation
      </button>
      {error ? (
        <span className="error-text small" role="alert">
          {error}
        </span>
      ) : null}
    </>
  );
}
