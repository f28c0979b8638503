import { badRequest, conflict, forbidden, notFound, unauthorized } from '../core/errors.ts';
import { newId, newSecret } from '../core/ids.ts';
import type { Store } from '../core/store.ts';
import type { ApiToken, Invite, Role, User } from '../core/types.ts';
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
}

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

/** Users, browser sessions, API tokens and invites. */
export class AccountsService {
  constructor(
    private readonly store: Store,
    private readonly registration: RegistrationPolicy,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Registers an account. The first account is always allowed and becomes admin. */
  async register(input: { email: string; password: string; inviteCode?: string | undefined }): Promise<User> {
    const email = normalizeEmail(input.email);
    const first = (await this.store.countUsers()) === 0;
    if (!first) {
      if (this.registration === 'closed') throw forbidden('registration is closed; ask an administrator for an account');
      if (this.registration === 'invite') {
        if (!input.inviteCode) throw forbidden('registration needs an invite code');
        const invite = await this.store.consumeInvite(hashSecret(input.inviteCode), email, this.now().toISOString());
        if (!invite) throw forbidden('the invite code is invalid, used, expired or issued for another email');
      }
    }
    return this.createUser({ email, password: input.password, role: first ? 'admin' : 'user' });
  }

  async createUser(input: { email: string; password: string; role: Role }): Promise<User> {
    const email = normalizeEmail(input.email);
    if (await this.store.getUserByEmail(email)) throw conflict('an account with this email already exists');
    return this.store.createUser({ id: newId('usr'), email, passwordHash: await hashPassword(input.password), role: input.role });
  }

  /** Checks the password and opens a browser session; returns the cookie secret. */
  async login(email: string, password: string): Promise<{ user: User; sessionSecret: string; expiresAt: Date }> {
    const user = await this.store.getUserByEmail(normalizeEmail(email));
    const valid = await verifyPassword(password, user?.passwordHash ?? (await decoyHash));
    if (!user || !valid) throw unauthorized('wrong email or password');
    if (user.disabled) throw forbidden('this account is disabled');
    const sessionSecret = newSecret('ays');
    const expiresAt = new Date(this.now().getTime() + sessionLifetimeMs);
    await this.store.createSession({ idHash: hashSecret(sessionSecret), userId: user.id, expiresAt: expiresAt.toISOString() });
    const { passwordHash: _omitted, ...publicUser } = user;
    return { user: publicUser, sessionSecret, expiresAt };
  }

  async logout(sessionSecret: string): Promise<void> {
    await this.store.deleteSession(hashSecret(sessionSecret));
  }

  async authenticateSession(sessionSecret: string): Promise<Principal | null> {
    const session = await this.store.getSession(hashSecret(sessionSecret), this.now().toISOString());
    if (!session) return null;
    const user = await this.store.getUser(session.userId);
    return user && !user.disabled ? { user, via: 'session' } : null;
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

  listUsers(): Promise<User[]> {
    return this.store.listUsers();
  }

  async updateUser(actor: User, userId: string, patch: { role?: Role; disabled?: boolean }): Promise<User> {
    if (actor.id === userId && (patch.disabled === true || patch.role === 'user')) {
      throw badRequest('administrators cannot disable or demote themselves');
    }
    const user = await this.store.updateUser(userId, patch);
    if (!user) throw notFound('user');
    return user;
  }
}
