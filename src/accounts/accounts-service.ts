import { AppError, badRequest, conflict, forbidden, notFound, unauthorized } from '../core/errors.ts';
import { newId, newSecret } from '../core/ids.ts';
import type { Store } from '../core/store.ts';
import type { ApiToken, Invite, Role, User } from '../core/types.ts';
import { LoginThrottle, type LoginAttempt } from './login-throttle.ts';
import { hashPassword, hashSecret, verifyPassword } from './passwords.ts';

export type RegistrationPolicy = 'open' | 'invite' | 'closed';

const sessionLifetimeMs = 14 * 24 * 3600 * 1000;
const inviteLifetimeMs = 7 * 24 * 3600 * 1000;
/** A password hash to compare against when the email is unknown, so timing does not reveal which emails exist. */
const decoyHash = hashPassword('decoy-password');

export interface Principal {
  user: User;
  /** How the caller proved who they are. */
  via: 'session' | 'token';
  tokenId?: string;
  /** The hash of the session cookie's secret (the session's id in the store). */
  sessionId?: string;
}

/** Credentials that stopped being valid; whatever was opened with them must end. */
export type Revocation =
  /** Signed out. */
  | { kind: 'session'; sessionId: string }
  | { kind: 'token'; tokenId: string }
  /** Every browser session of the user (their password changed); API tokens stay valid. */
  | { kind: 'user-sessions'; userId: string }
  /** Everything of the user (disabled). */
  | { kind: 'user'; userId: string };

export interface AccountsOptions {
  now?: () => Date;
  /** Slows down password guessing; by default with the default bounds. */
  loginThrottle?: LoginThrottle;
}

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

/** Users, browser sessions, API tokens and invites. */
export class AccountsService {
  private readonly now: () => Date;
  private readonly throttle: LoginThrottle;
  private readonly revocationListeners = new Set<(revocation: Revocation) => void>();

  constructor(
    private readonly store: Store,
    private readonly registration: RegistrationPolicy,
    options: AccountsOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.throttle = options.loginThrottle ?? new LoginThrottle();
  }

  /**
   * Registers an account. The first account is always allowed and becomes admin: the store hands that place to
   * exactly one registration, however many arrive at once; the others follow the registration policy.
   */
  async register(input: { email: string; password: string; inviteCode?: string | undefined }): Promise<User> {
    const email = normalizeEmail(input.email);
    if ((await this.store.countUsers()) === 0) {
      const admin = await this.store.createFirstAdmin({ id: newId('usr'), email, passwordHash: await hashPassword(input.password) });
      if (admin) return admin;
    }
    if (this.registration === 'closed') throw forbidden('registration is closed; ask an administrator for an account');
    if (this.registration === 'invite') {
      if (!input.inviteCode) throw forbidden('registration needs an invite code');
      const invite = await this.store.consumeInvite(hashSecret(input.inviteCode), email, this.now().toISOString());
      if (!invite) throw forbidden('the invite code is invalid, used, expired or issued for another email');
    }
    return this.createUser({ email, password: input.password, role: 'user' });
  }

  /** Calls `listener` whenever credentials are revoked; answers a function that stops it. */
  onRevoke(listener: (revocation: Revocation) => void): () => void {
    this.revocationListeners.add(listener);
    return () => this.revocationListeners.delete(listener);
  }

  async createUser(input: { email: string; password: string; role: Role }): Promise<User> {
    const email = normalizeEmail(input.email);
    if (await this.store.getUserByEmail(email)) throw conflict('an account with this email already exists');
    return this.store.createUser({ id: newId('usr'), email, passwordHash: await hashPassword(input.password), role: input.role });
  }

  /**
   * Checks the password and opens a browser session; returns the cookie secret. `address` is the client's: failed
   * tries are throttled per account and address and per account (LOGIN_THROTTLED with a retry delay).
   */
  async login(email: string, password: string, address: string): Promise<{ user: User; sessionSecret: string; expiresAt: Date }> {
    const normalized = normalizeEmail(email);
    const attempt = this.admit(normalized, address);
    const user = await this.store.getUserByEmail(normalized);
    const valid = await verifyPassword(password, user?.passwordHash ?? (await decoyHash));
    if (!user || !valid) throw unauthorized('wrong email or password');
    this.throttle.succeeded(attempt);
    if (user.disabled) throw forbidden('this account is disabled');
    const { passwordHash: _omitted, ...publicUser } = user;
    return { user: publicUser, ...(await this.openSession(user.id)) };
  }

  /**
   * Changes the user's password after checking the current one (throttled like a sign-in), and signs out every
   * browser session of the user; API tokens stay valid. A caller signed in with a cookie gets a new session.
   */
  async changePassword(
    principal: Principal,
    input: { currentPassword: string; newPassword: string },
    address: string,
  ): Promise<{ sessionSecret: string; expiresAt: Date } | null> {
    const stored = await this.store.getUserByEmail(principal.user.email);
    if (!stored) throw unauthorized('sign in again');
    const attempt = this.admit(normalizeEmail(stored.email), address);
    if (!(await verifyPassword(input.currentPassword, stored.passwordHash))) throw forbidden('the current password is wrong');
    this.throttle.succeeded(attempt);
    if (input.newPassword === input.currentPassword) throw badRequest('the new password must differ from the current one');
    await this.store.updateUser(stored.id, { passwordHash: await hashPassword(input.newPassword) });
    await this.store.deleteUserSessions(stored.id);
    this.revoked({ kind: 'user-sessions', userId: stored.id });
    return principal.via === 'session' ? this.openSession(stored.id) : null;
  }

  async logout(sessionSecret: string): Promise<void> {
    const sessionId = hashSecret(sessionSecret);
    await this.store.deleteSession(sessionId);
    this.revoked({ kind: 'session', sessionId });
  }

  async authenticateSession(sessionSecret: string): Promise<Principal | null> {
    const sessionId = hashSecret(sessionSecret);
    const session = await this.store.getSession(sessionId, this.now().toISOString());
    if (!session) return null;
    const user = await this.store.getUser(session.userId);
    return user && !user.disabled ? { user, via: 'session', sessionId } : null;
  }

  /** Whether the credential `principal` was made from still holds: a check for what was opened before a revocation. */
  async stillValid(principal: Principal): Promise<boolean> {
    const now = this.now().toISOString();
    const user = await this.store.getUser(principal.user.id);
    if (!user || user.disabled) return false;
    if (principal.via === 'session') return principal.sessionId !== undefined && (await this.store.getSession(principal.sessionId, now)) !== null;
    const token = (await this.store.listApiTokens(user.id)).find((candidate) => candidate.id === principal.tokenId);
    return token !== undefined && token.revokedAt === null && (token.expiresAt === null || token.expiresAt > now);
  }

  async authenticateToken(token: string): Promise<Principal | null> {
    const now = this.now().toISOString();
    const record = await this.store.findLiveApiToken(hashSecret(token), now);
    if (!record) return null;
    const user = await this.store.getUser(record.userId);
    if (!user || user.disabled) return null;
    await this.store.touchApiToken(record.id, now);
    return { user, via: 'token', tokenId: record.id };
  }

  /** Creates an API token; the secret is returned once and only its hash is kept. */
  async createToken(userId: string, input: { name: string; expiresInDays?: number | undefined }): Promise<{ token: string; record: ApiToken }> {
    const token = newSecret('ayt');
    const expiresAt = input.expiresInDays
      ? new Date(this.now().getTime() + input.expiresInDays * 24 * 3600 * 1000).toISOString()
      : null;
    const record = await this.store.createApiToken({
      id: newId('tok'),
      userId,
      name: input.name,
      tokenHash: hashSecret(token),
      prefix: token.slice(0, 12),
      expiresAt,
    });
    return { token, record };
  }

  listTokens(userId: string): Promise<ApiToken[]> {
    return this.store.listApiTokens(userId);
  }

  async revokeToken(userId: string, tokenId: string): Promise<void> {
    if (!(await this.store.revokeApiToken(userId, tokenId, this.now().toISOString()))) throw notFound('token');
    this.revoked({ kind: 'token', tokenId });
  }

  /** Admin only: an invite code for one registration. */
  async createInvite(admin: User, email: string | null): Promise<{ code: string; invite: Invite }> {
    if (admin.role !== 'admin') throw forbidden('only administrators can invite');
    const code = newSecret('ayi');
    const invite = await this.store.createInvite({
      id: newId('inv'),
      codeHash: hashSecret(code),
      email: email ? normalizeEmail(email) : null,
      createdBy: admin.id,
      expiresAt: new Date(this.now().getTime() + inviteLifetimeMs).toISOString(),
    });
    return { code, invite };
  }

  /** Whether any account exists yet (the sign-in page opens on "Create account" on a new server). */
  async hasAnyAccount(): Promise<boolean> {
    return (await this.store.countUsers()) > 0;
  }

  listUsers(): Promise<User[]> {
    return this.store.listUsers();
  }

  async updateUser(actor: User, userId: string, patch: { role?: Role; disabled?: boolean }): Promise<User> {
    if (actor.id === userId && (patch.disabled === true || patch.role === 'user')) {
      throw badRequest('administrators cannot disable or demote themselves');
    }
    const user = await this.store.updateUser(userId, patch);
    if (!user) throw notFound('user');
    if (user.disabled) this.revoked({ kind: 'user', userId });
    return user;
  }

  private admit(account: string, address: string): LoginAttempt {
    const verdict = this.throttle.admit(account, address);
    if (verdict.allowed) return verdict.attempt;
    const who = verdict.scope === 'address' ? 'for this account from your address' : 'for this account';
    throw new AppError('LOGIN_THROTTLED', `too many failed sign-ins ${who}; try again in ${verdict.retryAfterSeconds} s`, {
      retryAfterSeconds: verdict.retryAfterSeconds,
      scope: verdict.scope,
    });
  }

  private async openSession(userId: string): Promise<{ sessionSecret: string; expiresAt: Date }> {
    const sessionSecret = newSecret('ays');
    const expiresAt = new Date(this.now().getTime() + sessionLifetimeMs);
    await this.store.createSession({ idHash: hashSecret(sessionSecret), userId, expiresAt: expiresAt.toISOString() });
    return { sessionSecret, expiresAt };
  }

  private revoked(revocation: Revocation): void {
    for (const listener of this.revocationListeners) listener(revocation);
  }
}
