/** The terminal's colours for each app theme; the backgrounds match `.terminal-screen` in styles.css. */
export const terminalThemes = {
  dark: { background: '#0d1117', foreground: '#e6edf3', cursor: '#e6edf3', cursorAccent: '#0d1117', selectionBackground: '#264f78' },
  light: { background: '#ffffff', foreground: '#1f2328', cursor: '#1f2328', cursorAccent: '#ffffff', selectionBackground: '#b6d7ff' },
} as const;
