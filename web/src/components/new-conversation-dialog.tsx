import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError } from '../api/client.ts';
import { navigate } from '../router.tsx';
import { useSession } from '../session.tsx';
import { Dialog } from './dialog.tsx';

/** The agent of the last conversation started: the next one starts with it preselected. */
export const lastAgentKey = 'agentyard:last-agent';

export function NewConversationDialog({ open, onClose }: { open: boolean; onClose(): void }) {
  const { agents, refreshConversations } = useSession();
  const [agentId, setAgentId] = useState('');
  const [title, setTitle] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!open) return;
    setTitle('');
    setError(null);
    const remembered = localStorage.getItem(lastAgentKey);
    setAgentId(agents?.some((agent) => agent.id === remembered) ? remembered! : (agents?.[0]?.id ?? ''));
  }, [open, agents]);

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const created = await api.createConversation({ ...(agentId ? { agentId } : {}), ...(title.trim() ? { title: title.trim() } : {}) });
      localStorage.setItem(lastAgentKey, created.agentId);
      await refreshConversations();
      onClose();
      navigate(`/c/${created.id}`);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'could not create the conversation');
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog open={open} title="New conversation" onClose={onClose}>
      <form className="form" onSubmit={(event) => void submit(event)}>
        <label>
          Agent
          <select value={agentId} onChange={(event) => setAgentId(event.target.value)} required>
            {(agents ?? []).map((agent) => (
              <option key={agent.id} value={agent.id}>
                {agent.name} {agent.builtin ? '(built-in)' : ''} — {agent.model}
              </option>
            ))}
          </select>
        </label>
        <label>
          Title <span className="muted">(optional)</span>
          <input value={title} onChange={(event) => setTitle(event.target.value)} maxLength={200} placeholder="New conversation" />
        </label>
        {error ? <p className="error-text" role="alert">{error}</p> : null}
        <div className="dialog-footer">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy || !agents}>
            Create
          </button>
        </div>
      </form>
    </Dialog>
  );
}
