import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, ApiError } from './api/client.ts';
import type { Agent, Conversation, Status, User } from './api/types.ts';

interface SessionValue {
  user: User;
  status: Status | null;
  conversations: Conversation[] | null;
  agents: Agent[] | null;
  refreshConversations(): Promise<void>;
  refreshAgents(): Promise<void>;
  signOut(): Promise<void>;
}

const SessionContext = createContext<SessionValue | null>(null);

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}

/** The signed-in user and the lists most pages need; refreshed on demand and every so often. */
export function SessionProvider({ user, onSignedOut, children }: { user: User; onSignedOut(): void; children: ReactNode }) {
  const [status, setStatus] = useState<Status | null>(null);
  const [conversations, setConversations] = useState<Conversation[] | null>(null);
  const [agents, setAgents] = useState<Agent[] | null>(null);

  const refreshConversations = useCallback(async () => {
    try {
      setConversations((await api.conversations()).conversations);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) onSignedOut();
    }
  }, [onSignedOut]);
  const refreshAgents = useCallback(async () => {
    setAgents((await api.agents()).agents);
  }, []);

  useEffect(() => {
    void api.status().then(setStatus, () => undefined);
    void refreshConversations();
    void refreshAgents().catch(() => undefined);
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') void refreshConversations();
    }, 15_000);
    return () => clearInterval(timer);
  }, [refreshConversations, refreshAgents]);

  const signOut = useCallback(async () => {
    await api.logout().catch(() => undefined);
    onSignedOut();
  }, [onSignedOut]);

  const value = useMemo(
    () => ({ user, status, conversations, agents, refreshConversations, refreshAgents, signOut }),
    [user, status, conversations, agents, refreshConversations, refreshAgents, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
