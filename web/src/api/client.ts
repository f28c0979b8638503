import type { Activity, Agent, AgentCeilingsState, AgentDefinition, AgentLimits, ApiToken, Conversation, ModelChoices, QuotaReport, Replica, Status, UsageReport, User, WorkspaceEntry } from './types.ts';

/** An error answer of the API: `{ error: { code, message, requestId } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

async function request<T>(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let payload: BodyInit | undefined;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    headers['content-type'] = 'application/octet-stream';
    payload = body;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', ...init });
  } catch {
    throw new ApiError(0, 'NETWORK', 'the server cannot be reached; check your connection');
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string; requestId?: string } } | null)?.error;
    throw new ApiError(response.status, error?.code ?? 'HTTP_' + response.status, error?.message ?? `the server answered ${response.status}`, error?.requestId);
  }
  return parsed as T;
}

const conversationPath = (id: string): string => `/api/conversations/${encodeURIComponent(id)}`;
const query = (values: Record<string, string>): string => new URLSearchParams(values).toString();

/** The public API, one function per route the app uses. */
export const api = {
  status: () => request<Status>('GET', '/api/status'),
  me: () => request<{ user: User }>('GET', '/api/auth/me'),
  login: (email: string, password: string) => request<{ user: User }>('POST', '/api/auth/login', { email, password }),
  register: (email: string, password: string, inviteCode?: string) =>
    request<{ user: User }>('POST', '/api/auth/register', { email, password, ...(inviteCode ? { inviteCode } : {}) }),
  logout: () => request<void>('POST', '/api/auth/logout'),
  changePassword: (currentPassword: string, newPassword: string) => request<void>('POST', '/api/auth/password', { currentPassword, newPassword }),

  conversations: () => request<{ conversations: Conversation[] }>('GET', '/api/conversations'),
  conversation: (id: string) => request<Conversation & { running: boolean }>('GET', conversationPath(id)),
  createConversation: (input: { agentId?: string; title?: string }) => request<Conversation>('POST', '/api/conversations', input),
  renameConversation: (id: string, title: string) => request<Conversation>('PATCH', conversationPath(id), { title }),
  deleteConversation: (id: string) => request<void>('DELETE', conversationPath(id)),
  send: (id: string, text: string) => request<{ turnId: string; status: 'queued' }>('POST', `${conversationPath(id)}/messages`, { text }),
  interrupt: (id: string) => request<{ interrupted: boolean }>('POST', `${conversationPath(id)}/interrupt`),
  eventsUrl: (id: string) => `${conversationPath(id)}/events`,

  /** A page of a workspace directory; pass `nextCursor` back as `cursor` for the next one (null: the last page). */
  listFiles: (id: string, path: string, page: { cursor?: string | null; limit?: number } = {}) =>
    request<{ path: string; entries: WorkspaceEntry[]; nextCursor: string | null }>(
      'GET',
      `${conversationPath(id)}/files?${query({ path, ...(page.cursor ? { cursor: page.cursor } : {}), ...(page.limit ? { limit: String(page.limit) } : {}) })}`,
    ),
  fileUrl: (id: string, path: string, download = false) => `${conversationPath(id)}/files/content?${query(download ? { path, download: '1' } : { path })}`,
  archiveUrl: (id: string, path = '') => `${conversationPath(id)}/files/archive?${query({ path })}`,
  /** A file's bytes and its ETag (what `saveFile` sends back, so that a change made meanwhile is not overwritten). */
  readFile: async (id: string, path: string): Promise<{ bytes: ArrayBuffer; etag: string | null }> => {
    const response = await fetch(api.fileUrl(id, path), { credentials: 'same-origin' });
    if (!response.ok) {
      const body = (await response.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
      throw new ApiError(response.status, body?.error?.code ?? 'HTTP_' + response.status, body?.error?.message ?? `the server answered ${response.status}`);
    }
    return { bytes: await response.arrayBuffer(), etag: response.headers.get('etag') };
  },
  /** Writes a file only if it is still the version `etag` names (null: whatever it is); FILE_CHANGED (412) otherwise. */
  saveFile: async (id: string, path: string, content: Blob, etag: string | null): Promise<{ etag: string | null }> => {
    let response: Response;
    try {
      response = await fetch(`${conversationPath(id)}/files/content?${query({ path })}`, {
        method: 'PUT',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/octet-stream', accept: 'application/json', ...(etag ? { 'if-match': etag } : {}) },
        body: content,
      });
    } catch {
      throw new ApiError(0, 'NETWORK', 'the server cannot be reached; check your connection');
    }
    if (!response.ok) {
      const body = (await response.json().catch(() => null)) as { error?: { code: string; message: string; requestId?: string } } | null;
      throw new ApiError(response.status, body?.error?.code ?? 'HTTP_' + response.status, body?.error?.message ?? `the server answered ${response.status}`, body?.error?.requestId);
    }
    return { etag: response.headers.get('etag') };
  },
  upload: (id: string, path: string, file: Blob) => request<{ path: string; size: number }>('PUT', `${conversationPath(id)}/files/content?${query({ path })}`, file),
  terminalUrl: (id: string, params: Record<string, string>) => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${conversationPath(id)}/terminal?${query(params)}`;
  },

  agents: () => request<{ agents: Agent[] }>('GET', '/api/agents'),
  createAgent: (definition: AgentDefinition) => request<Agent>('POST', '/api/agents', definition),
  updateAgent: (id: string, patch: Partial<AgentDefinition>) => request<Agent>('PATCH', `/api/agents/${encodeURIComponent(id)}`, patch),
  deleteAgent: (id: string) => request<void>('DELETE', `/api/agents/${encodeURIComponent(id)}`),
  agentCeilings: () => request<{ ceilings: AgentLimits }>('GET', '/api/agent-limits'),
  adminAgentCeilings: () => request<AgentCeilingsState>('GET', '/api/admin/agent-limits'),
  setAgentCeilings: (ceilings: AgentLimits) => request<AgentCeilingsState>('PUT', '/api/admin/agent-limits', ceilings),
  resetAgentCeilings: () => request<AgentCeilingsState>('DELETE', '/api/admin/agent-limits'),
  models: () => request<ModelChoices>('GET', '/api/models'),

  usage: (range: { from?: string; to?: string } = {}) => request<UsageReport>('GET', `/api/usage?${query(range as Record<string, string>)}`),
  quota: () => request<QuotaReport>('GET', '/api/quota'),

  tokens: () => request<{ tokens: ApiToken[] }>('GET', '/api/tokens'),
  createToken: (name: string, expiresInDays?: number) =>
    request<ApiToken & { token: string }>('POST', '/api/tokens', { name, ...(expiresInDays ? { expiresInDays } : {}) }),
  revokeToken: (id: string) => request<void>('DELETE', `/api/tokens/${encodeURIComponent(id)}`),

  ownCredentials: () => request<{ model: { kind: string } | null; canStore: boolean }>('GET', '/api/credentials'),
  setOwnCredential: (kind: 'api-key' | 'oauth-token', value: string) => request<unknown>('PUT', '/api/credentials/model', { kind, value }),
  deleteOwnCredential: () => request<void>('DELETE', '/api/credentials/model'),

  users: () => request<{ users: User[] }>('GET', '/api/admin/users'),
  updateUser: (id: string, patch: { role?: 'admin' | 'user'; disabled?: boolean }) => request<{ user: User }>('PATCH', `/api/admin/users/${encodeURIComponent(id)}`, patch),
  activity: () => request<{ conversations: Activity[] }>('GET', '/api/admin/activity'),
  replicas: () => request<{ replicas: Replica[] }>('GET', '/api/admin/replicas'),
};
