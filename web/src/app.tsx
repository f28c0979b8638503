import { lazy, Suspense, useCallback, useEffect, useState } from 'react';
import { api, ApiError } from './api/client.ts';
import type { User } from './api/types.ts';
import { Layout } from './components/layout.tsx';
import { Spinner } from './components/spinner.tsx';
import { HomePage } from './pages/home-page.tsx';
import { NotFoundPage } from './pages/not-found-page.tsx';
import { SignInPage } from './pages/sign-in-page.tsx';
import { matchPath, usePath } from './router.tsx';
import { SessionProvider } from './session.tsx';

// Heavy pages load on first use: the chat brings Markdown, diffs and (later) the highlighter and the terminal.
const ConversationPage = lazy(() => import('./pages/conversation-page.tsx'));
const AgentsPage = lazy(() => import('./pages/agents-page.tsx'));
const AccountPage = lazy(() => import('./pages/account-page.tsx'));
const UsagePage = lazy(() => import('./pages/usage-page.tsx'));
const AdminPage = lazy(() => import('./pages/admin-page.tsx'));

export function App() {
  const [user, setUser] = useState<User | null | undefined>(undefined);

  useEffect(() => {
    api.me().then(
      ({ user: signedIn }) => setUser(signedIn),
      (error: unknown) => setUser(error instanceof ApiError && error.status === 401 ? null : null),
    );
  }, []);

  const signedOut = useCallback(() => setUser(null), []);

  if (user === undefined) return <div className="boot"><Spinner label="Loading" /></div>;
  if (user === null) return <SignInPage onSignedIn={setUser} />;
  return (
    <SessionProvider user={user} onSignedOut={signedOut}>
      <Routes isAdmin={user.role === 'admin'} />
    </SessionProvider>
  );
}

function Routes({ isAdmin }: { isAdmin: boolean }) {
  const path = usePath();
  const conversation = matchPath('/c/:id', path);
  let page;
  if (path === '/') page = <HomePage />;
  else if (conversation) page = <ConversationPage key={conversation.id} conversationId={conversation.id!} />;
  else if (path === '/agents') page = <AgentsPage />;
  else if (path === '/account') page = <AccountPage />;
  else if (path === '/usage') page = <UsagePage />;
  else if (path === '/admin' && isAdmin) page = <AdminPage />;
  else page = <NotFoundPage />;
  const withSidebar = path === '/' || conversation !== null;
  return (
    <Layout sidebar={withSidebar} activeConversation={conversation?.id ?? null}>
      <Suspense fallback={<div className="page-loading"><Spinner label="Loading" /></div>}>{page}</Suspense>
    </Layout>
  );
}
