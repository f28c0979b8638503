import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef, useState } from 'react';
import { api } from '../api/client.ts';
import { TerminalConnection, type TerminalState } from '../lib/terminal-connection.ts';
import { terminalThemes } from '../lib/terminal-theme.ts';
import { currentTheme, onThemeChange } from '../lib/theme.ts';

/** An interactive shell in the conversation's sandbox (xterm.js over the terminal WebSocket). */
export default function TerminalPanel({ conversationId, visible }: { conversationId: string; visible: boolean }) {
  const host = useRef<HTMLDivElement>(null);
  const fitRef = useRef<(() => void) | null>(null);
  const connectionRef = useRef<TerminalConnection | null>(null);
  const [state, setState] = useState<{ state: TerminalState; detail?: string }>({ state: 'connecting' });

  useEffect(() => {
    const element = host.current!;
    const terminal = new Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
      fontSize: 13,
      scrollback: 5000,
      theme: terminalThemes[currentTheme()],
      allowProposedApi: false,
    });
    const fit = new FitAddon();
    terminal.loadAddon(fit);
    terminal.open(element);
    // The terminal follows the app's light or dark theme, live.
    const stopFollowingTheme = onThemeChange((theme) => {
      terminal.options.theme = terminalThemes[theme];
    });

    const connection = new TerminalConnection({
      url: (params) => api.terminalUrl(conversationId, params),
      storageKey: `agentyard:terminal:${conversationId}`,
      size: () => ({ cols: terminal.cols, rows: terminal.rows }),
      onOutput: (data) => terminal.write(data),
      onReset: () => terminal.reset(),
      onState: (next, detail) => setState({ state: next, ...(detail ? { detail } : {}) }),
    });
    connectionRef.current = connection;

    // Copy: Ctrl+Shift+C, or Ctrl+C while text is selected. Paste: Ctrl+Shift+V or Ctrl+V (the browser's paste event).
    terminal.attachCustomKeyEventHandler((event) => {
      if (event.type !== 'keydown') return true;
      const key = event.key.toLowerCase();
      const mod = event.ctrlKey || event.metaKey;
      if (mod && key === 'c' && (event.shiftKey || terminal.hasSelection())) {
        const selection = terminal.getSelection();
        if (selection) void navigator.clipboard?.writeText(selection).catch(() => document.execCommand('copy'));
        terminal.clearSelection();
        event.preventDefault();
        return false;
      }
      if (mod && key === 'v') {
        if (event.shiftKey && navigator.clipboard?.readText) {
          event.preventDefault();
          void navigator.clipboard.readText().then((text) => terminal.paste(text), () => undefined);
        }
        return false; // Ctrl+V: let the browser fire its paste event, which xterm turns into input
      }
      return true;
    });
    const input = terminal.onData((data) => connection.send(data));
    const resized = terminal.onResize(({ cols, rows }) => connection.resize(cols, rows));

    const fitNow = (): void => {
      if (element.offsetWidth > 0 && element.offsetHeight > 0) fit.fit();
    };
    fitRef.current = fitNow;
    fitNow();
    const observer = new ResizeObserver(() => fitNow());
    observer.observe(element);
    connection.connect();
    terminal.focus();
    const online = (): void => connection.reconnectNow();
    window.addEventListener('online', online);

    return () => {
      stopFollowingTheme();
      window.removeEventListener('online', online);
      observer.disconnect();
      input.dispose();
      resized.dispose();
      connection.close();
      terminal.dispose();
    };
  }, [conversationId]);

  useEffect(() => {
    if (visible) requestAnimationFrame(() => fitRef.current?.());
  }, [visible]);

  return (
    <div className="terminal-panel">
      <div className="terminal-status" data-state={state.state}>
        <span className={`status-dot ${state.state === 'open' ? 'running' : 'idle'}`} />
        <span>
          {state.state === 'open' ? 'Connected to the sandbox' : state.state === 'exited' ? 'Disconnected' : state.state === 'failed' ? 'Unavailable' : 'Connecting…'}
          {state.detail ? ` — ${state.detail}` : ''}
        </span>
        <span className="spacer" />
        <span className="muted small only-wide">Ctrl+Shift+C / Ctrl+Shift+V to copy / paste</span>
        {state.state === 'exited' || state.state === 'failed' ? (
          <button type="button" className="button small" onClick={() => connectionRef.current?.restart()}>
            New shell
          </button>
        ) : null}
      </div>
      <div className="terminal-screen" ref={host} data-testid="terminal" />
    </div>
  );
}
