import { useMemo, useState } from 'react';
import { timeAgo } from '../lib/format.ts';
import { Link } from '../router.tsx';
import { useSession } from '../session.tsx';
import { Icon } from './icons.tsx';
import { Spinner } from './spinner.tsx';

export function ConversationList({ active }: { active: string | null }) {
  const { conversations, agents } = useSession();
  const [search, setSearch] = useState('');
  const agentNames = useMemo(() => new Map((agents ?? []).map((agent) => [agent.id, agent.name])), [agents]);
  const shown = useMemo(() => {
    const needle = search.trim().toLowerCase();
    return (conversations ?? []).filter((conversation) => !needle || conversation.title.toLowerCase().includes(needle));
  }, [conversations, search]);

  if (conversations === null) return <Spinner label="Loading conversations" />;
  return (
    <div className="conversation-list">
      <label className="search">
        <Icon name="search" size={16} />
        <input type="search" placeholder="Search by title" value={search} onChange={(event) => setSearch(event.target.value)} aria-label="Search conversations by title" />
      </label>
      {conversations.length === 0 ? <p className="muted small">No conversations yet.</p> : null}
      {conversations.length > 0 && shown.length === 0 ? <p className="muted small">No title matches “{search}”.</p> : null}
      <ul>
        {shown.map((conversation) => (
          <li key={conversation.id}>
            <Link to={`/c/${conversation.id}`} className={`conversation-link${conversation.id === active ? ' active' : ''}`} aria-current={conversation.id === active ? 'page' : undefined}>
              <span className="conversation-title">
                {conversation.running ? <span className="status-dot running" title="A turn is running" aria-label="running" /> : null}
                {conversation.title}
              </span>
              <span className="conversation-meta">
                <span>{agentNames.get(conversation.agentId) ?? conversation.agentId}</span>
                <span title={new Date(conversation.updatedAt).toLocaleString()}>{timeAgo(conversation.updatedAt)}</span>
              </span>
            </Link>
          </li>
        ))}
      </ul>
    </div>
  );
}
