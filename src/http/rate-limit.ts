import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../core/errors.ts';
import type { App } from './app.ts';

export interface RateLimitOptions {
  windowSeconds: number;
  /** Requests per window for one user, whatever they authenticate with; 0: no limit. */
  perUser: number;
  /** Requests per window for one API token; 0: no limit. */
  perToken: number;
  /** Requests per window from one client address without credentials; 0: no limit. */
  anonymous: number;
  /** Milliseconds since the epoch (tests). */
  now?: () => number;
}

/** How one limit stands after counting a request. */
export interface RateLimitState {
  limit: number;
  remaining: number;
  /** Seconds until the window starts over. */
  resetSeconds: number;
  allowed: boolean;
}

/**
 * Fixed-window counters by key (`user:…`, `token:…`, `ip:…`), in memory. Windows are aligned per key to its first
 * request, so a client cannot double its rate by straddling a clock boundary.
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  private readonly windowMs: number;
  private readonly now: () => number;
  private lastSweep = 0;

  constructor(windowSeconds: number, now: () => number = Date.now) {
    this.windowMs = windowSeconds * 1000;
    this.now = now;
  }

  hit(key: string, limit: number): RateLimitState {
    const now = this.now();
    this.sweep(now);
    let window = this.windows.get(key);
    if (!window || now - window.start >= this.windowMs) {
      window = { start: now, count: 0 };
      this.windows.set(key, window);
    }
    window.count += 1;
    return {
      limit,
      remaining: Math.max(0, limit - window.count),
      resetSeconds: Math.max(1, Math.ceil((window.start + this.windowMs - now) / 1000)),
      allowed: window.count <= limit,
    };
  }

  /** Drops finished windows now and then, so idle keys do not pile up. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [key, window] of this.windows) if (now - window.start >= this.windowMs) this.windows.delete(key);
  }
}

/** Only the API is limited; the web app's static files and the health probes are not. */
const limited = (url: string): boolean => url.startsWith('/api/') || url.startsWith('/v1/');

/**
 * Rate limits at the API edge, per user and per API token (anonymous requests per client address). Every answer
 * carries the IETF `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy` headers of
 * the tightest limit; a request over a limit gets 429 RATE_LIMITED with `Retry-After`. Install after authentication.
 */
export function installRateLimits(app: App, options: RateLimitOptions): void {
  const limiter = new RateLimiter(options.windowSeconds, options.now);
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (!limited(request.url)) return;
    const checks: Array<[string, number]> = [];
    const principal = request.principal;
    if (principal) {
      if (options.perUser > 0) checks.push([`user:${principal.user.id}`, options.perUser]);
      if (principal.via === 'token' && principal.tokenId && options.perToken > 0) checks.push([`token:${principal.tokenId}`, options.perToken]);
    } else if (options.anonymous > 0) {
      checks.push([`ip:${request.ip}`, options.anonymous]);
    }
    if (checks.length === 0) return;
    const states = checks.map(([key, limit]) => limiter.hit(key, limit));
    const refused = states.filter((state) => !state.allowed).sort((a, b) => b.resetSeconds - a.resetSeconds)[0];
    const shown =
      refused ??
      states.reduce((tightest, state) =>
        state.remaining < tightest.remaining || (state.remaining === tightest.remaining && state.limit < tightest.limit) ? state : tightest,
      );
    void reply.header('ratelimit-limit', shown.limit);
    void reply.header('ratelimit-remaining', shown.remaining);
    void reply.header('ratelimit-reset', shown.resetSeconds);
    void reply.header('ratelimit-policy', `${shown.limit};w=${options.windowSeconds}`);
    if (refused) {
      void reply.header('retry-after', refused.resetSeconds);
      throw new AppError('RATE_LIMITED', `too many requests: at most ${refused.limit} per ${options.windowSeconds} s; retry in ${refused.resetSeconds} s`, {
        retryAfterSeconds: refused.resetSeconds,
      });
    }
  });
}
