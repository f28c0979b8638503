/** Milliseconds since the epoch; every stored timestamp is an ISO string made from this. */
export const nowIso = (): string => new Date().toISOString();
