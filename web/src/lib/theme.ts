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

/** The theme in force now: what `data-theme` on <html> says. */
export function currentTheme(): 'light' | 'dark' {
  return document.documentElement.dataset.theme === 'dark' ? 'dark' : 'light';
}

/** Calls back whenever the theme in force changes (a choice in the top bar, or the OS while following it). */
export function onThemeChange(listener: (theme: 'light' | 'dark') => void): () => void {
  const observer = new MutationObserver(() => listener(currentTheme()));
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  return () => observer.disconnect();
}
