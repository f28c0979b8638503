import DOMPurify from 'dompurify';
import { marked } from 'marked';
import { memo, useEffect, useMemo, useRef } from 'react';
import { highlightWithin } from '../lib/highlight.ts';

marked.use({ gfm: true, breaks: false });

// Links open elsewhere and never hand this page to the target.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.getAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

/** Markdown rendered to sanitized HTML; code blocks are highlighted once the text stops changing. */
export const Markdown = memo(function Markdown({ text, streaming = false }: { text: string; streaming?: boolean }) {
  const html = useMemo(() => DOMPurify.sanitize(marked.parse(text, { async: false }) as string), [text]);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const timer = setTimeout(() => void highlightWithin(ref.current), streaming ? 400 : 0);
    return () => clearTimeout(timer);
  }, [html, streaming]);
  return <div ref={ref} className="markdown" dangerouslySetInnerHTML={{ __html: html }} />;
});
