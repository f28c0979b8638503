export type ThemeChoice = 'light' | 'dark' | 'system';

const key = 'agentyard:theme';
const media = window.matchMedia('(prefers-color-scheme: dark)');

export function storedTheme(): ThemeChoice {
  const value = localStorage.getItem(key);
  return value === 'light' || value === 'dark' ? value : 'system';
}

/** Sets `data-theme` on <html> (the stylesheet's variables follow it); 'system' follows the OS, live. */
export function applyTheme(choice: ThemeChoice): void {
  if (choice === 'system') localStorage.removeItem(key);
  else localStorage.setItem(key, choice);
  const resolved = choice === 'system' ? (media.matches ? 'dark' : 'light') : choice;
  document.documentElement.dataset.theme = resolved;
}

media.addEventListener('change', () => {
  if (storedTheme() === 'system') applyTheme('system');
});
