import { useEffect, useState } from 'react';
import { api, ApiError } from '../api/client.ts';
import { formatBytes } from '../lib/format.ts';
import { highlightFile } from '../lib/highlight.ts';
import { Icon } from './icons.tsx';
import { Spinner } from './spinner.tsx';

const maxShownBytes = 1024 * 1024;
const imageTypes: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp' };

type View = { kind: 'text'; html: string; truncated: boolean; size: number } | { kind: 'image'; url: string; size: number } | { kind: 'binary'; size: number };

/** A workspace file, highlighted by its extension; images are shown, other binaries offered for download. */
export function FileViewer({ conversationId, path, version, onClose }: { conversationId: string; path: string; version: number; onClose(): void }) {
  const [view, setView] = useState<View | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    let objectUrl: string | null = null;
    setError(null);
    api.readFile(conversationId, path).then(
      async (buffer) => {
        const bytes = new Uint8Array(buffer);
        const extension = path.split('.').pop()?.toLowerCase() ?? '';
        let next: View;
        if (imageTypes[extension]) {
          objectUrl = URL.createObjectURL(new Blob([bytes], { type: imageTypes[extension] }));
          next = { kind: 'image', url: objectUrl, size: bytes.length };
        } else if (bytes.subarray(0, 8000).includes(0)) {
          next = { kind: 'binary', size: bytes.length };
        } else {
          const text = new TextDecoder().decode(bytes.subarray(0, maxShownBytes));
          next = { kind: 'text', html: await highlightFile(text, path), truncated: bytes.length > maxShownBytes, size: bytes.length };
        }
        if (!cancelled) setView(next);
      },
      (caught: unknown) => {
        if (!cancelled) setError(caught instanceof ApiError ? caught.message : 'could not read the file');
      },
    );
    return () => {
      cancelled = true;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [conversationId, path, version]);

  return (
    <div className="file-viewer" role="region" aria-label={`File ${path}`}>
      <div className="file-viewer-header">
        <span className="file-viewer-path" title={path}>
          {path}
        </span>
        {view ? <span className="muted small">{formatBytes(view.size)}</span> : null}
        <a className="icon-button" href={api.fileUrl(conversationId, path, true)} download aria-label="Download this file" title="Download">
          <Icon name="download" size={16} />
        </a>
        <button type="button" className="icon-button" aria-label="Close the file" onClick={onClose}>
          <Icon name="close" size={16} />
        </button>
      </div>
      <div className="file-viewer-body">
        {error ? <p className="error-text">{error}</p> : null}
        {!view && !error ? <Spinner label="Loading" /> : null}
        {view?.kind === 'text' ? (
          <>
            <pre className="code-view">
              <code className="hljs" dangerouslySetInnerHTML={{ __html: view.html }} />
            </pre>
            {view.truncated ? <p className="muted small">Showing the first {formatBytes(maxShownBytes)}; download the file for the rest.</p> : null}
          </>
        ) : null}
        {view?.kind === 'image' ? <img className="image-view" src={view.url} alt={path} /> : null}
        {view?.kind === 'binary' ? <p className="muted">A binary file ({formatBytes(view.size)}). Download it to open it.</p> : null}
      </div>
    </div>
  );
}
