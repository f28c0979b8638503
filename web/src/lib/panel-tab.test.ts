import { describe, expect, it } from 'vitest';
import { initialPanel, storedPanelValue } from './panel-tab.ts';

describe('initialPanel', () => {
  it('reopens the tab the user left, or the closed panel, on a wide screen', () => {
    expect(initialPanel(storedPanelValue('terminal'), true)).toBe('terminal');
    expect(initialPanel(storedPanelValue('files'), true)).toBe('files');
    expect(initialPanel(storedPanelValue(null), true)).toBeNull();
  });

  it('opens Files when nothing (or nonsense) is stored, and nothing on a narrow screen', () => {
    expect(initialPanel(null, true)).toBe('files');
    expect(initialPanel('bogus', true)).toBe('files');
    expect(initialPanel('terminal', false)).toBeNull();
  });
});
