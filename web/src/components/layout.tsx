import { useEffect, useState, type ReactNode } from 'react';
import { applyTheme, storedTheme, type ThemeChoice } from '../lib/theme.ts';
import { Link, usePath } from '../router.tsx';
import { useSession } from '../session.tsx';
import { ConversationList } from './conversation-list.tsx';
import { Icon } from './icons.tsx';
import { NewConversationDialog } from './new-conversation-dialog.tsx';

const nextTheme: Record<ThemeChoice, ThemeChoice> = { system: 'light', light: 'dark', dark: 'system' };
const themeIcon = { system: 'monitor', light: 'sun', dark: 'moon' } as const;

export function Layout({ sidebar, activeConversation, children }: { sidebar: boolean; activeConversation: string | null; children: ReactNode }) {
  const { user, signOut } = useSession();
  const path = usePath();
  const [theme, setTheme] = useState<ThemeChoice>(storedTheme);
  const [drawer, setDrawer] = useState(false);
  const [creating, setCreating] = useState(false);

  useEffect(() => setDrawer(false), [path]);

  const nav = [
    { to: '/', label: 'Chats', active: path === '/' || path.startsWith('/c/') },
    { to: '/agents', label: 'Agents', active: path === '/agents' },
    { to: '/usage', label: 'Usage', active: path === '/usage' },
    { to: '/account', label: 'Account', active: path === '/account' },
    ...(user.role === 'admin' ? [{ to: '/admin', label: 'Admin', active: path === '/admin' }] : []),
  ];

  return (
    <div className={`shell${sidebar ? ' with-sidebar' : ''}${drawer ? ' drawer-open' : ''}`}>
      <header className="topbar">
        {sidebar ? (
          <button type="button" className="icon-button only-narrow" aria-label="Conversations" onClick={() => setDrawer((open) => !open)}>
            <Icon name={drawer ? 'close' : 'menu'} />
          </button>
        ) : null}
        <Link to="/" className="brand">
          <img src="/favicon.svg" alt="" width={22} height={22} />
          <span>Agentyard</span>
        </Link>
        <nav className="nav" aria-label="Main">
          {nav.map((item) => (
            <Link key={item.to} to={item.to} className={item.active ? 'active' : undefined} aria-current={item.active ? 'page' : undefined}>
              {item.label}
            </Link>
          ))}
        </nav>
        <div className="topbar-end">
          <button
            type="button"
            className="icon-button"
            aria-label={`Theme: ${theme} (switch to ${nextTheme[theme]})`}
            title={`Theme: ${theme}`}
            onClick={() => {
              const next = nextTheme[theme];
              applyTheme(next);
              setTheme(next);
            }}
          >
            <Icon name={themeIcon[theme]} />
          </button>
          <span className="user-email only-wide" title={user.email}>
            {user.email}
          </span>
          <button type="button" className="button ghost only-wide" onClick={() => void signOut()}>
            Sign out
          </button>
          <button type="button" className="icon-button only-narrow" aria-label="Sign out" title="Sign out" onClick={() => void signOut()}>
            <Icon name="logout" />
          </button>
        </div>
      </header>
      {sidebar ? (
        <aside className="sidebar" aria-label="Conversations">
          <button type="button" className="button primary wide" onClick={() => setCreating(true)}>
            <Icon name="plus" /> New conversation
          </button>
          <ConversationList active={activeConversation} />
        </aside>
      ) : null}
      {sidebar ? <div className="scrim" onClick={() => setDrawer(false)} /> : null}
      <main className="main">{children}</main>
      <NewConversationDialog open={creating} onClose={() => setCreating(false)} />
    </div>
  );
}
