/** Milliseconds since the epoch; every stored timestamp is an ISO string made from this. */
export const nowIso = (): string => new Date().toISOString();

/** Milliseconds since the epoch; a service that measures time takes one, so that its tests can move time by hand. */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now();
