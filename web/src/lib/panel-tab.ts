/** The workspace panel's tabs; null: the panel is closed. */
export type PanelTab = 'files' | 'terminal';

export const panelStorageKey = 'agentyard:panel';

/** What to store for the panel the user left open (or closed). */
export function storedPanelValue(panel: PanelTab | null): string {
  return panel ?? 'closed';
}

/**
 * The panel to open a conversation on: the one the user left, on a screen wide enough to show it beside the chat;
 * Files when nothing is stored yet. A narrow screen opens on the chat alone.
 */
export function initialPanel(stored: string | null, wide: boolean): PanelTab | null {
  if (!wide) return null;
  if (stored === 'files' || stored === 'terminal') return stored;
  if (stored === 'closed') return null;
  return 'files';
}
