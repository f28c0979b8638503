import type { HLJSApi } from 'highlight.js';

let loading: Promise<HLJSApi> | null = null;

/** The highlighter, loaded on first use (its own chunk, off the initial bundle). */
export function loadHighlighter(): Promise<HLJSApi> {
  loading ??= import('./highlight-languages.ts').then((module) => module.hljs);
  return loading;
}

const extensionLanguages: Record<string, string> = {
  sh: 'bash', bash: 'bash', zsh: 'bash', c: 'c', h: 'c', cc: 'cpp', cpp: 'cpp', hpp: 'cpp', css: 'css', diff: 'diff', patch: 'diff',
  go: 'go', ini: 'ini', toml: 'ini', cfg: 'ini', java: 'java', js: 'javascript', mjs: 'javascript', cjs: 'javascript', jsx: 'javascript',
  json: 'json', md: 'markdown', py: 'python', rb: 'ruby', rs: 'rust', sql: 'sql', ts: 'typescript', tsx: 'typescript', mts: 'typescript',
  html: 'xml', xml: 'xml', svg: 'xml', yml: 'yaml', yaml: 'yaml',
};

/** The highlighting language of a file, from its name. */
export function languageOfFile(name: string): string | null {
  const base = name.split('/').pop() ?? name;
  if (base === 'Dockerfile') return 'dockerfile';
  if (base === 'Makefile') return 'makefile';
  const extension = base.includes('.') ? base.split('.').pop()!.toLowerCase() : '';
  return extensionLanguages[extension] ?? null;
}

const maxHighlightBytes = 200_000;

/** Highlights `pre code` blocks under `root` that are not highlighted yet. */
export async function highlightWithin(root: HTMLElement | null): Promise<void> {
  if (!root) return;
  const blocks = [...root.querySelectorAll<HTMLElement>('pre code:not([data-highlighted])')];
  if (blocks.length === 0) return;
  const hljs = await loadHighlighter();
  for (const block of blocks) {
    if (!block.isConnected || block.dataset.highlighted) continue;
    const text = block.textContent ?? '';
    if (text.length > maxHighlightBytes) continue;
    const language = /language-([\w+-]+)/.exec(block.className)?.[1];
    const known = language && hljs.getLanguage(language) ? language : null;
    const result = known ? hljs.highlight(text, { language: known, ignoreIllegals: true }) : text.length < 20_000 ? hljs.highlightAuto(text) : null;
    if (!result) continue;
    block.innerHTML = result.value;
    block.classList.add('hljs');
    block.dataset.highlighted = 'yes';
  }
}

/** Highlighted HTML for a whole file (escaped plain text when the language is unknown or the file is large). */
export async function highlightFile(text: string, name: string): Promise<string> {
  const language = languageOfFile(name);
  if (!language || text.length > maxHighlightBytes * 5) return escapeHtml(text);
  const hljs = await loadHighlighter();
  return hljs.highlight(text, { language, ignoreIllegals: true }).value;
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
