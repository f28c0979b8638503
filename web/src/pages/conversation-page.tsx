import { lazy, Suspense, useCallback, useEffect, useLayoutEffect, useRef, useState, type FormEvent } from 'react';
import { api, ApiError } from '../api/client.ts';
import type { Conversation, ConversationEvent } from '../api/types.ts';
import { Composer } from '../components/composer.tsx';
import { CredentialBanner } from '../components/credential-banner.tsx';
import { ConfirmDialog } from '../components/dialog.tsx';
import { FileTree } from '../components/file-tree.tsx';
import { Icon } from '../components/icons.tsx';
import { Spinner } from '../components/spinner.tsx';
import { TurnBlock } from '../components/turn-block.tsx';
import { Announcer } from '../lib/announcements.ts';
import { ConversationState } from '../lib/conversation-state.ts';
import { EventStreamClient, type StreamState } from '../lib/event-stream.ts';
import { initialPanel, panelStorageKey, storedPanelValue, type PanelTab } from '../lib/panel-tab.ts';
import { navigate } from '../router.tsx';
import { useSession } from '../session.tsx';
import { NotFoundPage } from './not-found-page.tsx';

const TerminalPanel = lazy(() => import('../components/terminal-panel.tsx'));

export default function ConversationPage({ conversationId }: { conversationId: string }) {
  const { agents, conversations, refreshConversations } = useSession();
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [missing, setMissing] = useState(false);
  const [state] = useState(() => new ConversationState());
  const [, setVersion] = useState(0);
  const [loaded, setLoaded] = useState(false);
  const [stream, setStream] = useState<{ state: StreamState; error?: string }>({ state: 'connecting' });
  const [sendError, setSendError] = useState<string | null>(null);
  const [draft, setDraft] = useState<{ text: string; version: number } | null>(null);
  const [panel, setPanelState] = useState<PanelTab | null>(() => initialPanel(localStorage.getItem(panelStorageKey), window.matchMedia('(min-width: 1100px)').matches));
  const [terminalOpened, setTerminalOpened] = useState(panel === 'terminal');
  const [announcements, setAnnouncements] = useState<{ id: number; text: string }[]>([]);
  const scroller = useRef<HTMLDivElement>(null);
  const chatColumn = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const runningRef = useRef(false);
  const announced = useRef(0);
  /** Events up to this one were history when the page opened: they are shown, not announced (null: not known yet). */
  const historyUntil = useRef<number | null>(null);

  // The panel the user leaves open (or closed) is the one a reload opens.
  const setPanel = useCallback((next: PanelTab | null) => {
    localStorage.setItem(panelStorageKey, storedPanelValue(next));
    setPanelState(next);
  }, []);

  useEffect(() => {
    api.conversation(conversationId).then(
      (loaded) => {
        historyUntil.current ??= loaded.lastSeq;
        setConversation(loaded);
      },
      (error: unknown) => {
        if (error instanceof ApiError && error.status === 404) setMissing(true);
      },
    );
  }, [conversationId]);

  // The event stream: replay from the start, then live; batches are applied once per frame.
  useEffect(() => {
    let pending: ConversationEvent[] = [];
    let frame = 0;
    let listChanged = false;
    let spoken: string[] = [];
    const announcer = new Announcer();
    const flush = (): void => {
      frame = 0;
      const batch = pending;
      pending = [];
      state.apply(batch);
      setLoaded(true);
      setVersion((version) => version + 1);
      if (spoken.length) {
        const added = spoken.map((text) => ({ id: (announced.current += 1), text }));
        spoken = [];
        // Only the last few stay in the live region: a screen reader announces what is added to it.
        setAnnouncements((current) => [...current, ...added].slice(-5));
      }
      if (listChanged) {
        listChanged = false;
        void refreshConversations();
      }
    };
    const client = new EventStreamClient({
      url: api.eventsUrl(conversationId),
      onEvents: (events) => {
        pending.push(...(events as ConversationEvent[]));
        const history = historyUntil.current;
        if (history !== null) spoken.push(...announcer.take((events as ConversationEvent[]).filter((event) => event.seq > history)));
        if (events.some((event) => event.type === 'turn.started' || event.type === 'turn.ended')) listChanged = true;
        frame ||= requestAnimationFrame(flush);
      },
      onState: (streamState, detail) => {
        setStream({ state: streamState, ...(detail.error ? { error: detail.error } : {}) });
        // A conversation with no events yet has nothing to replay: it is loaded once the stream is live.
        if (streamState === 'live') setLoaded(true);
      },
      onFatal: (error) => {
        if (error.status === 404) setMissing(true);
        else setStream({ state: 'stopped', error: error.message });
      },
    });
    client.start();
    const online = (): void => client.reconnectNow();
    const visible = (): void => {
      if (document.visibilityState === 'visible') client.reconnectNow();
    };
    window.addEventListener('online', online);
    document.addEventListener('visibilitychange', visible);
    return () => {
      client.stop();
      cancelAnimationFrame(frame);
      window.removeEventListener('online', online);
      document.removeEventListener('visibilitychange', visible);
    };
  }, [conversationId, state, refreshConversations]);

  // Follow the conversation while the reader is at the bottom.
  useLayoutEffect(() => {
    const element = scroller.current;
    if (element && stick.current) element.scrollTop = element.scrollHeight;
  });

  // The list is refreshed as turns start and end, so it brings the title the server gives from the first message.
  const listedTitle = conversations?.find((candidate) => candidate.id === conversationId)?.title;
  useEffect(() => {
    if (listedTitle !== undefined) setConversation((current) => (current && current.title !== listedTitle ? { ...current, title: listedTitle } : current));
  }, [listedTitle]);

  const send = useCallback(
    async (text: string): Promise<boolean> => {
      setSendError(null);
      const first = state.turns.length === 0;
      try {
        await api.send(conversationId, text);
        stick.current = true;
        if (first) void refreshConversations();
        return true;
      } catch (error) {
        setSendError(error instanceof ApiError ? error.message : 'the message could not be sent');
        return false;
      }
    },
    [conversationId, state, refreshConversations],
  );
  const stop = useCallback(() => {
    api.interrupt(conversationId).catch((error: unknown) => setSendError(error instanceof ApiError ? error.message : 'could not stop the turn'));
  }, [conversationId]);

  // Escape stops the running turn while the reader is in the conversation (not in a dialog, nor in the terminal,
  // whose programs need Escape themselves).
  useEffect(() => {
    const keyDown = (event: KeyboardEvent): void => {
      if (event.key !== 'Escape' || event.defaultPrevented || !runningRef.current) return;
      if (document.querySelector('dialog[open]')) return;
      const target = event.target as Node | null;
      const inConversation = target === document.body || target === document.documentElement || (target !== null && chatColumn.current?.contains(target) === true);
      if (!inConversation) return;
      event.preventDefault();
      stop();
    };
    document.addEventListener('keydown', keyDown);
    return () => document.removeEventListener('keydown', keyDown);
  }, [stop]);
  // Retry sends the turn's message again as a new turn; if that fails, the text lands in the box to edit.
  const retry = useCallback(
    (text: string) => {
      void send(text).then((sent) => {
        if (!sent) setDraft({ text, version: Date.now() });
      });
    },
    [send],
  );

  if (missing) return <NotFoundPage what="Conversation" />;

  const activity = state.activity();
  const running = activity.kind !== 'idle';
  runningRef.current = running;
  const queued = state.queued;
  const agent = agents?.find((candidate) => candidate.id === conversation?.agentId);
  const openPanel = (tab: PanelTab): void => {
    if (tab === 'terminal') setTerminalOpened(true);
    setPanel(panel === tab ? null : tab);
  };

  return (
    <div className={`conversation-page${panel ? ' panel-open' : ''}`}>
      <div className="chat-column" ref={chatColumn}>
        <ConversationHeader
          conversation={conversation}
          agentName={agent?.name ?? conversation?.agentId ?? ''}
          panel={panel}
          onPanel={openPanel}
          onRenamed={(renamed) => {
            setConversation(renamed);
            void refreshConversations();
          }}
        />
        <CredentialBanner />
        <div
          className="chat-scroll"
          ref={scroller}
          onScroll={(event) => {
            const element = event.currentTarget;
            stick.current = element.scrollHeight - element.scrollTop - element.clientHeight < 80;
          }}
        >
          {/* Not a live region: streamed text would be read again at every delta. The announcer below speaks instead. */}
          <div className="chat" aria-busy={!loaded}>
            {!loaded ? <Spinner label="Loading the conversation" /> : null}
            {loaded && state.turns.length === 0 ? (
              <div className="empty-state compact">
                <h2>Say hello</h2>
                <p className="muted">Ask {agent?.name ?? 'the agent'} for something. It works in its own sandbox: open Files or Terminal to see it.</p>
              </div>
            ) : null}
            {state.turns.map((turn) => (
              <TurnBlock key={turn.id} turn={turn} onRetry={retry} />
            ))}
            {state.errors.map((error) => (
              <div key={error.seq} className="turn-error">
                <strong>{error.code}</strong>: {error.message}
              </div>
            ))}
          </div>
        </div>
        <StatusLine activity={activity} queued={queued} stream={stream} />
        <div className="visually-hidden" aria-live="polite" aria-relevant="additions" data-testid="announcer">
          {announcements.map((announcement) => (
            <p key={announcement.id}>{announcement.text}</p>
          ))}
        </div>
        {sendError ? (
          <div className="send-error" role="alert">
            {sendError}
          </div>
        ) : null}
        <Composer running={running} disabled={false} onSend={send} onStop={stop} draft={draft} />
      </div>
      {panel || terminalOpened ? (
        <aside className={`workspace-panel${panel ? '' : ' hidden'}`} aria-label="Workspace">
          <div className="panel-tabs" role="tablist">
            <button type="button" role="tab" aria-selected={panel === 'files'} className={panel === 'files' ? 'active' : ''} onClick={() => setPanel('files')}>
              <Icon name="folder" size={16} /> Files
            </button>
            <button
              type="button"
              role="tab"
              aria-selected={panel === 'terminal'}
              className={panel === 'terminal' ? 'active' : ''}
              onClick={() => {
                setTerminalOpened(true);
                setPanel('terminal');
              }}
            >
              <Icon name="terminal" size={16} /> Terminal
            </button>
            <button type="button" className="icon-button" aria-label="Close the workspace panel" onClick={() => setPanel(null)}>
              <Icon name="close" size={16} />
            </button>
          </div>
          {panel === 'files' ? <FileTree conversationId={conversationId} version={state.filesVersion} /> : null}
          {terminalOpened ? (
            <div className={`terminal-host${panel === 'terminal' ? '' : ' hidden'}`}>
              <Suspense fallback={<Spinner label="Loading the terminal" />}>
                <TerminalPanel conversationId={conversationId} visible={panel === 'terminal'} />
              </Suspense>
            </div>
          ) : null}
        </aside>
      ) : null}
    </div>
  );
}

function StatusLine({ activity, queued, stream }: { activity: ReturnType<ConversationState['activity']>; queued: number; stream: { state: StreamState; error?: string } }) {
  let label: string;
  switch (activity.kind) {
    case 'idle':
      label = 'Idle';
      break;
    case 'thinking':
      label = 'Thinking…';
      break;
    case 'writing':
      label = 'Writing…';
      break;
    case 'tool':
      label = `Running ${activity.name}…`;
      break;
  }
  const reconnecting = stream.state === 'reconnecting' || stream.state === 'stopped';
  return (
    <div className="status-line" data-activity={activity.kind}>
      <span className={`status-dot ${activity.kind === 'idle' ? 'idle' : 'running'}`} />
      <span className="status-label">{label}</span>
      {queued > 0 ? <span className="badge">{queued} queued</span> : null}
      {reconnecting ? <span className="badge warning">{stream.state === 'stopped' ? `Disconnected${stream.error ? `: ${stream.error}` : ''}` : 'Reconnecting…'}</span> : null}
    </div>
  );
}

function ConversationHeader({
  conversation,
  agentName,
  panel,
  onPanel,
  onRenamed,
}: {
  conversation: Conversation | null;
  agentName: string;
  panel: PanelTab | null;
  onPanel(tab: PanelTab): void;
  onRenamed(conversation: Conversation): void;
}) {
  const { refreshConversations } = useSession();
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState('');
  const [deleting, setDeleting] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const rename = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    if (!conversation || !title.trim()) return;
    try {
      onRenamed(await api.renameConversation(conversation.id, title.trim()));
      setEditing(false);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'could not rename');
    }
  };
  const remove = async (): Promise<void> => {
    if (!conversation) return;
    setBusy(true);
    try {
      await api.deleteConversation(conversation.id);
      await refreshConversations();
      navigate('/', { replace: true });
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'could not delete');
      setBusy(false);
      setDeleting(false);
    }
  };

  return (
    <div className="conversation-header">
      {editing ? (
        <form className="rename-form" onSubmit={(event) => void rename(event)}>
          <input
            value={title}
            onChange={(event) => setTitle(event.target.value)}
            maxLength={200}
            autoFocus
            aria-label="Title"
            onKeyDown={(event) => {
              if (event.key !== 'Escape') return;
              event.preventDefault(); // Escape cancels the rename, not the running turn
              setEditing(false);
            }}
          />
          <button type="submit" className="button primary small">
            Save
          </button>
          <button type="button" className="button small" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <div className="conversation-heading">
          <h1 title={conversation?.title}>{conversation?.title ?? '…'}</h1>
          <span className="muted small">{agentName}</span>
        </div>
      )}
      {error ? <span className="error-text small">{error}</span> : null}
      <div className="header-actions">
        {!editing ? (
          <button
            type="button"
            className="icon-button"
            aria-label="Rename"
            title="Rename"
            onClick={() => {
              setTitle(conversation?.title ?? '');
              setEditing(true);
            }}
          >
            <Icon name="edit" />
          </button>
        ) : null}
        <button type="button" className="icon-button" aria-label="Delete the conversation" title="Delete" onClick={() => setDeleting(true)}>
          <Icon name="trash" />
        </button>
        <button type="button" className={`button small${panel === 'files' ? ' active' : ''}`} onClick={() => onPanel('files')} aria-pressed={panel === 'files'} aria-label="Files">
          <Icon name="folder" size={16} /> <span className="only-wide">Files</span>
        </button>
        <button
          type="button"
          className={`button small${panel === 'terminal' ? ' active' : ''}`}
          onClick={() => onPanel('terminal')}
          aria-pressed={panel === 'terminal'}
          aria-label="Terminal"
        >
          <Icon name="terminal" size={16} /> <span className="only-wide">Terminal</span>
        </button>
      </div>
      <ConfirmDialog
        open={deleting}
        title="Delete this conversation?"
        message={
          <>
            “{conversation?.title}” will be deleted with its whole history and its workspace files. This cannot be undone.
          </>
        }
        confirmLabel="Delete"
        danger
        busy={busy}
        onConfirm={() => void remove()}
        onCancel={() => setDeleting(false)}
      />
    </div>
  );
}
