/**
 * Whether this replica is shutting down, for the parts that react to it: readiness fails, and open event streams end
 * with a hint to reconnect (to another replica).
 */
export class DrainSignal {
  private started = false;
  private readonly listeners = new Set<() => void>();

  get draining(): boolean {
    return this.started;
  }

  /** Calls `listener` when the drain starts (at once if it has); returns the function that stops listening. */
  onDrain(listener: () => void): () => void {
    if (this.started) {
      listener();
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const listener of [...this.listeners]) listener();
    this.listeners.clear();
  }
}
