import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { Store } from '../core/store.ts';
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

/** Counts requests per key and says whether each is within its key's limit. */
export interface RateLimitCounter {
  hit(key: string, limit: number): RateLimitState | Promise<RateLimitState>;
}

/** How a key's window stands after counting a request: `count` requests since `windowStart` (epoch ms). */
function stateOf(limit: number, count: number, windowStart: number, windowMs: number, now: number): RateLimitState {
  // Another replica's clock may run a little ahead: the reset is never said to be further off than one window.
  const resetMs = Math.min(windowMs, windowStart + windowMs - now);
  return { limit, remaining: Math.max(0, limit - count), resetSeconds: Math.max(1, Math.ceil(resetMs / 1000)), allowed: count <= limit };
}

/**
 * Fixed-window counters by key (`user:…`, `token:…`, `ip:…`), in memory: for a single server process. Windows are
 * aligned per key to its first request, so a client cannot double its rate by straddling a clock boundary.
 */
export class RateLimiter implements RateLimitCounter {
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
    return stateOf(limit, window.count, window.start, this.windowMs, now);
  }

  /** Drops finished windows now and then, so idle keys do not pile up. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [key, window] of this.windows) if (now - window.start >= this.windowMs) this.windows.delete(key);
  }
}

/**
 * The same fixed windows, counted in the store (table rate_limit_windows), so that a limit holds across every replica
 * on the database: each request adds one to its key's row in one atomic statement and is allowed when the count it
 * gets back is within the limit. At most `limit` requests per key and window are allowed, whichever replicas they
 * reach. A window starts at the key's first request after the previous one ended, by the clock of the replica that
 * took that request, so clocks that differ shift a window's end by as much. Finished windows are deleted now and then.
 * While the store is unavailable, each replica counts in its own memory.
 */
export class StoreRateLimiter implements RateLimitCounter {
  private readonly windowMs: number;
  private lastSweep: number;
  /** Counts while the store is unavailable: the limit then holds per replica. */
  private readonly fallback: RateLimiter;

  constructor(
    private readonly store: Pick<Store, 'hitRateLimit' | 'deleteRateLimitWindows'>,
    windowSeconds: number,
    private readonly now: () => number = Date.now,
    private readonly logger: Logger = silentLogger,
  ) {
    this.windowMs = windowSeconds * 1000;
    this.lastSweep = this.now();
    this.fallback = new RateLimiter(windowSeconds, now);
  }

  async hit(key: string, limit: number): Promise<RateLimitState> {
    const now = this.now();
    this.sweep(now);
    try {
      const { windowStart, count } = await this.store.hitRateLimit(key, this.windowMs, now);
      return stateOf(limit, count, windowStart, this.windowMs, now);
    } catch (error) {
      // The limiter does not turn a database outage into one more failure: requests that need the store meet it anyway.
      if (!(error instanceof AppError && error.code === 'STORE_UNAVAILABLE')) throw error;
      return this.fallback.hit(key, limit);
    }
  }

  /** Once per window, in the background: a key's next request would start a new window anyway. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    this.store.deleteRateLimitWindows(now - this.windowMs).catch((error: unknown) => this.logger.warn({ err: error }, 'could not delete finished rate-limit windows'));
  }
}

/** The counter for the store: shared through it on PostgreSQL (several replicas), in memory on SQLite (one process). */
export function createRateLimitCounter(store: Store, windowSeconds: number, logger: Logger = silentLogger): RateLimitCounter {
  return store.kind === 'postgres' ? new StoreRateLimiter(store, windowSeconds, Date.now, logger) : new RateLimiter(windowSeconds);
}

/** Only the API is limited; the web app's static files and the health probes are not. */
const limited = (url: string): boolean => url.startsWith('/api/') || url.startsWith('/v1/');

/**
 * Rate limits at the API edge, per user and per API token (anonymous requests per client address). Every answer
 * carries the IETF `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy` headers of
 * the tightest limit; a request over a limit gets 429 RATE_LIMITED with `Retry-After`. Install after authentication.
 * `counter`: where requests are counted (createRateLimitCounter); by default in this process's memory.
 */
export function installRateLimits(app: App, options: RateLimitOptions, counter?: RateLimitCounter): void {
  const limiter = counter ?? new RateLimiter(options.windowSeconds, options.now);
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
    const states = await Promise.all(checks.map(([key, limit]) => limiter.hit(key, limit)));
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
