export type TerminalState = 'connecting' | 'open' | 'reconnecting' | 'exited' | 'failed';

export interface TerminalConnectionOptions {
  /** Builds the socket URL for a session id, output offset and size. */
  url(params: Record<string, string>): string;
  /** Keeps the session id across reloads of this tab. */
  storageKey: string;
  size(): { cols: number; rows: number };
  onOutput(data: Uint8Array): void;
  /** The server starts over (a new shell, or output this tab no longer has): clear the screen. */
  onReset(): void;
  onState(state: TerminalState, detail?: string): void;
}

/**
 * The terminal's WebSocket: it reconnects with backoff to the same shell (a session id kept in sessionStorage)
 * and tells the server how much output it has, so nothing is lost or shown twice across a drop or a reload.
 */
export class TerminalConnection {
  private socket: WebSocket | null = null;
  private received = 0;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private session: string;

  constructor(private readonly options: TerminalConnectionOptions) {
    this.session = sessionStorage.getItem(options.storageKey) ?? newSessionId();
    sessionStorage.setItem(options.storageKey, this.session);
  }

  connect(): void {
    this.closed = false;
    if (this.timer) clearTimeout(this.timer);
    const { cols, rows } = this.options.size();
    const params: Record<string, string> = { session: this.session, cols: String(cols), rows: String(rows) };
    if (this.received > 0) params.offset = String(this.received);
    this.options.onState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const socket = new WebSocket(this.options.url(params));
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    let attached = false;
    socket.onmessage = (message) => {
      if (typeof message.data === 'string') {
        const control = JSON.parse(message.data) as { type: string; start?: number; code?: number | null; message?: string };
        if (control.type === 'attached') {
          attached = true;
          this.attempt = 0;
          if (control.start !== this.received) this.options.onReset();
          this.received = control.start ?? 0;
          this.options.onState('open');
        } else if (control.type === 'exit') {
          this.exited(`the shell exited${control.code !== null && control.code !== undefined ? ` with code ${control.code}` : ''}`);
        } else if (control.type === 'error') this.options.onState('open', control.message);
        return;
      }
      const data = new Uint8Array(message.data as ArrayBuffer);
      this.received += data.length;
      this.options.onOutput(data);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket || this.closed) return;
      this.socket = null;
      if (event.code === 1000 || event.code === 4001) {
        this.exited(event.code === 4001 ? 'this terminal was opened in another tab' : 'the shell exited');
        return;
      }
      // The credential that opened it was revoked (sign-out, password change, token revoked, user disabled).
      if (event.code === 4401) {
        this.options.onState('failed', 'your sign-in ended: sign in again to open a terminal');
        return;
      }
      if (!attached && this.attempt >= 3) {
        this.options.onState('failed', 'the terminal could not be opened');
        return;
      }
      const delay = Math.min(10_000, 500 * 2 ** this.attempt);
      this.attempt += 1;
      this.options.onState('reconnecting', `reconnecting in ${Math.round(delay / 1000)} s`);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  /** Keyboard input and pastes. */
  send(data: string): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(new TextEncoder().encode(data));
  }

  resize(cols: number, rows: number): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: 'resize', cols, rows }));
  }

  /** Starts a fresh shell after the last one exited. */
  restart(): void {
    this.session = newSessionId();
    sessionStorage.setItem(this.options.storageKey, this.session);
    this.received = 0;
    this.attempt = 0;
    this.options.onReset();
    this.connect();
  }

  /** Reconnect at once (the browser is back online). */
  reconnectNow(): void {
    if (this.closed || this.socket) return;
    this.attempt = 0;
    this.connect();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.close();
    this.socket = null;
  }

  private exited(detail: string): void {
    this.closed = true;
    this.socket?.close();
    this.socket = null;
    this.options.onState('exited', detail);
  }
}

function newSessionId(): string {
  return crypto.randomUUID().replace(/-/g, '');
}
