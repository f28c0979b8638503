/** The closed set of error codes the API answers with, and the HTTP status of each. */
export const errorStatus = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  INTERNAL: 500,
  AGENT_FAILED: 500,
  UPSTREAM_ERROR: 502,
  SANDBOX_UNAVAILABLE: 503,
  /** The sandbox killed a process (or, under gVisor, itself) for going over the agent's memory limit. */
  SANDBOX_OUT_OF_MEMORY: 507,
  /** The workspace reached its size limit. */
  WORKSPACE_FULL: 507,
  SERVER_RESTARTED: 503,
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
