/** The closed set of error codes the API answers with, and the HTTP status of each. */
export const errorStatus = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  /** A write with `If-Match` found the file changed (or gone) since the version it names was read. */
  FILE_CHANGED: 412,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  /** Too many failed sign-ins for the account (from this address, or from everywhere); `Retry-After` says when to try again. */
  LOGIN_THROTTLED: 429,
  /** Terminals open at once reached a bound (per user or per conversation); close one first. */
  TOO_MANY_TERMINALS: 429,
  QUOTA_EXCEEDED: 429,
  /** Every sandbox the user may run at once (AGENTYARD_MAX_SANDBOXES_PER_USER) is busy with a turn or a terminal. */
  SANDBOX_LIMIT_REACHED: 429,
  /** Too many messages wait behind running turns (AGENTYARD_MAX_QUEUED_PER_CONVERSATION, …_PER_USER). */
  QUEUE_FULL: 429,
  /** Too many event streams open at once (AGENTYARD_EVENT_STREAMS_PER_USER, …_PER_CONVERSATION). */
  TOO_MANY_STREAMS: 429,
  INTERNAL: 500,
  AGENT_FAILED: 500,
  UPSTREAM_ERROR: 502,
  SANDBOX_UNAVAILABLE: 503,
  /** The sandbox died as a whole during a turn (a gVisor sandbox past its process limit); the next message starts a new one. */
  SANDBOX_CRASHED: 503,
  /** The sandbox killed a process (or, under gVisor, itself) for going over the agent's memory limit. */
  SANDBOX_OUT_OF_MEMORY: 507,
  /** The workspace reached its size limit. */
  WORKSPACE_FULL: 507,
  SERVER_RESTARTED: 503,
  /** The replica running the turn died (or lost its lease); another replica took the conversation over. */
  REPLICA_LOST: 503,
  /** A write by a replica that no longer holds the conversation's lease (the store refuses stale fencing tokens). */
  LEASE_LOST: 409,
  /** The replica is shutting down and takes no new work; another replica will. */
  REPLICA_DRAINING: 503,
  /** The database cannot be reached or stays locked right now; the request may be tried again. */
  STORE_UNAVAILABLE: 503,
  TIMEOUT: 504,
} as const;

export type ErrorCode = keyof typeof errorStatus;

/** An error whose code and message are safe to show to the caller. */
export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get status(): number {
    return errorStatus[this.code];
  }
}

export const notFound = (what: string): AppError => new AppError('NOT_FOUND', `${what} not found`);
export const badRequest = (message: string, details?: Record<string, unknown>): AppError =>
  new AppError('BAD_REQUEST', message, details);
export const conflict = (message: string): AppError => new AppError('CONFLICT', message);
export const unauthorized = (message = 'authentication required'): AppError =>
  new AppError('UNAUTHORIZED', message);
export const forbidden = (message: string): AppError => new AppError('FORBIDDEN', message);
