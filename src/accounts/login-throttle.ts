import { systemClock, type Clock } from '../core/clock.ts';

export interface LoginThrottleSettings {
  /** Failed sign-ins per account and address before that pair has to wait. */
  freeFailures: number;
  /** The longest wait of one account and address (the wait doubles from 1 s per failure). */
  maxDelaySeconds: number;
  /** Failed sign-ins on one account, from all addresses together, before its tries are spaced out. */
  accountFailures: number;
  /** The longest spacing of an account's tries (it doubles from 5 s per failure). */
  accountMaxDelaySeconds: number;
  /** Most accounts and account-address pairs remembered; the least recently seen are forgotten first. */
  maxKeys: number;
}

export const defaultLoginThrottleSettings: LoginThrottleSettings = {
  freeFailures: 5,
  maxDelaySeconds: 15 * 60,
  accountFailures: 50,
  accountMaxDelaySeconds: 60,
  maxKeys: 10_000,
};

/** A try the throttle let through; report how it went with `succeeded` (a failure needs no report). */
export interface LoginAttempt {
  readonly account: string;
  readonly address: string;
  readonly accountDelayUntil: number;
  readonly previousAccountDelayUntil: number;
}

export type LoginVerdict =
  | { allowed: true; attempt: LoginAttempt }
  | { allowed: false; retryAfterSeconds: number; scope: 'address' | 'account' };

interface PairState {
  kind: 'pair';
  failures: number;
  lastFailureAt: number;
  delayUntil: number;
  /** Until when this address may skip the account-wide spacing: it signed in to the account before. */
  trustedUntil: number;
}

interface AccountState {
  kind: 'account';
  failures: number;
  lastFailureAt: number;
  delayUntil: number;
}

const pairBaseDelayMs = 1000;
const accountBaseDelayMs = 5000;
/** Failures are forgotten after this long without one. */
const quietResetMs = 60 * 60_000;
/** How long an address that signed in stays exempt from the account-wide spacing. */
const trustMs = 30 * 24 * 3600_000;

/**
 * Slows down password guessing, in memory, at two levels. Per account and address: a few free failures, then a
 * wait that doubles with each failure. Per account from every address together: past a larger number of failures,
 * tries are spaced out (the spacing doubles up to a short maximum), so an attacker spraying from many addresses is
 * slowed while the owner can still get in: at the latest after that short maximum, and at once from an address
 * they signed in from before. Every try counts as a failure until it succeeds, so a burst of parallel guesses gets
 * no more through than one at a time.
 */
export class LoginThrottle {
  /** Insertion-ordered: the first keys are the least recently seen. */
  private readonly states = new Map<string, PairState | AccountState>();

  constructor(
    private readonly settings: LoginThrottleSettings = defaultLoginThrottleSettings,
    private readonly now: Clock = systemClock,
  ) {}

  /** Decides whether a sign-in to `account` from `address` may check its password now. */
  admit(account: string, address: string): LoginVerdict {
    const now = this.now();
    const pair = this.pair(account, address, now);
    const accountState = this.account(account, now);
    const trusted = pair.trustedUntil > now;
    if (pair.delayUntil > now) return { allowed: false, retryAfterSeconds: Math.ceil((pair.delayUntil - now) / 1000), scope: 'address' };
    if (!trusted && accountState.delayUntil > now) {
      return { allowed: false, retryAfterSeconds: Math.ceil((accountState.delayUntil - now) / 1000), scope: 'account' };
    }

    pair.failures += 1;
    pair.lastFailureAt = now;
    if (pair.failures >= this.settings.freeFailures) {
      pair.delayUntil = now + backoff(pairBaseDelayMs, pair.failures - this.settings.freeFailures, this.settings.maxDelaySeconds * 1000);
    }
    const previousAccountDelayUntil = accountState.delayUntil;
    accountState.failures += 1;
    accountState.lastFailureAt = now;
    if (accountState.failures >= this.settings.accountFailures) {
      accountState.delayUntil = Math.max(
        accountState.delayUntil,
        now + backoff(accountBaseDelayMs, accountState.failures - this.settings.accountFailures, this.settings.accountMaxDelaySeconds * 1000),
      );
    }
    return { allowed: true, attempt: { account, address, accountDelayUntil: accountState.delayUntil, previousAccountDelayUntil } };
  }

  /** The password was right: the pair starts over and its address is trusted; the try no longer counts against the account. */
  succeeded(attempt: LoginAttempt): void {
    const now = this.now();
    const pair = this.pair(attempt.account, attempt.address, now);
    pair.failures = 0;
    pair.delayUntil = 0;
    pair.trustedUntil = now + trustMs;
    const account = this.account(attempt.account, now);
    account.failures = Math.max(0, account.failures - 1);
    // Undo the spacing this try set, unless a later failure has moved it since.
    if (account.delayUntil === attempt.accountDelayUntil) account.delayUntil = attempt.previousAccountDelayUntil;
  }

  /** How many accounts and pairs are remembered (tests). */
  get size(): number {
    return this.states.size;
  }

  private pair(account: string, address: string, now: number): PairState {
    const state = this.touch(`p\0${account}\0${address}`, now, (): PairState => ({ kind: 'pair', failures: 0, lastFailureAt: 0, delayUntil: 0, trustedUntil: 0 }));
    return state as PairState;
  }

  private account(account: string, now: number): AccountState {
    const state = this.touch(`a\0${account}`, now, (): AccountState => ({ kind: 'account', failures: 0, lastFailureAt: 0, delayUntil: 0 }));
    return state as AccountState;
  }

  /** The key's state, moved to the most recently seen end; failures long past are forgotten. */
  private touch(key: string, now: number, fresh: () => PairState | AccountState): PairState | AccountState {
    let state = this.states.get(key);
    this.states.delete(key);
    if (state && state.failures > 0 && now - state.lastFailureAt > quietResetMs && state.delayUntil <= now) {
      state.failures = 0;
      state.delayUntil = 0;
    }
    state ??= fresh();
    this.states.set(key, state);
    while (this.states.size > this.settings.maxKeys) {
      const oldest = this.states.keys().next().value as string;
      this.states.delete(oldest);
    }
    return state;
  }
}

/** `base`, doubled `steps` times, at most `max`. */
function backoff(base: number, steps: number, max: number): number {
  return Math.min(max, base * 2 ** Math.min(steps, 40));
}
