import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AccountsService, Principal } from '../accounts/accounts-service.ts';
import { forbidden, unauthorized } from '../core/errors.ts';
import type { App } from './app.ts';
import type { User } from '../core/types.ts';

export const sessionCookie = 'agentyard_session';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Identity comes only from a verified session cookie or `Authorization: Bearer` API token; no other
 * header is ever trusted. A cookie-authenticated request that changes state must come from our own origin.
 */
export function installAuthentication(app: App, accounts: AccountsService): void {
  app.decorateRequest('principal', null);
  guardAdminRoutes(app);
  app.addHook('onRequest', async (request) => {
    const authorization = request.headers.authorization;
    if (authorization !== undefined) {
      const match = /^Bearer\s+(\S+)$/i.exec(authorization);
      if (!match) throw unauthorized('the Authorization header must be "Bearer <token>"');
      request.principal = await accounts.authenticateToken(match[1]!);
      if (!request.principal) throw unauthorized('the API token is invalid, revoked or expired');
      return;
    }
    const secret = request.cookies[sessionCookie];
    if (!secret) return;
    request.principal = await accounts.authenticateSession(secret);
    if (request.principal && !safeMethods.has(request.method) && !sameOrigin(request)) {
      throw forbidden('cross-site request refused');
    }
  });
}

/**
 * Administration routes (`/api/admin/...`) refuse anyone but an administrator before reading the request, so that a
 * caller who may not use them gets 401 or 403 whatever the body or parameters say. Their handlers check it too.
 */
function guardAdminRoutes(app: App): void {
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/api/admin/')) return;
    const own = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [async (request: FastifyRequest) => void requireAdmin(request), ...own];
  });
}

function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin ?? request.headers.referer;
  if (!origin) return true; // not a browser making a cross-site request: browsers send Origin on cross-site POSTs
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/** The signed-in user, or 401. */
export function requireUser(request: FastifyRequest): User {
  if (!request.principal) throw unauthorized('sign in or send an API token');
  return request.principal.user;
}

export function requireAdmin(request: FastifyRequest): User {
  const user = requireUser(request);
  if (user.role !== 'admin') throw forbidden('administrators only');
  return user;
}

export function setSessionCookie(reply: FastifyReply, secret: string, expiresAt: Date, secure: boolean): void {
  void reply.setCookie(sessionCookie, secret, { httpOnly: true, sameSite: 'strict', secure, path: '/', expires: expiresAt });
}

export function clearSessionCookie(reply: FastifyReply, secure: boolean): void {
  void reply.clearCookie(sessionCookie, { httpOnly: true, sameSite: 'strict', secure, path: '/' });
}
