import { useEffect, useState } from 'react';
import { api, ApiError } from '../api/client.ts';
import { formatBytes } from '../lib/format.ts';
import { highlightFile } from '../lib/highlight.ts';
import { Icon } from './icons.tsx';
import { Spinner } from './spinner.tsx';

const maxShownBytes = 1024 * 1024;
const imageTypes: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp' };

type View =
  | { kind: 'text'; text: string; html: string; truncated: boolean; editable: boolean; size: number; etag: string | null }
  | { kind: 'image'; url: string; size: number }
  | { kind: 'binary'; size: number };

/** An edit in progress: the text, and the version of the file it started from (what the save must still find). */
interface Edit {
  draft: string;
  base: string | null;
  saving: boolean;
  /** The file changed on disk since the edit began: the save was refused, and the user chooses what to do. */
  conflict: boolean;
  error: string | null;
}

/** Strict UTF-8 decoding: a file that is not valid UTF-8 is shown, but never edited (saving would change its bytes). */
function decodeText(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * A workspace file, highlighted by its extension; images are shown, other binaries offered for download. A text
 * file can be edited and saved; the save names the version the edit started from, so that if the agent changed the
 * file meanwhile the user is told instead of overwriting it.
 */
export function FileViewer({ conversationId, path, version, onClose }: { conversationId: string; path: string; version: number; onClose(): void }) {
  const [view, setView] = useState<View | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [edit, setEdit] = useState<Edit | null>(null);
  const [reloads, setReloads] = useState(0);
  const [saved, setSaved] = useState(false);

  useEffect(() => {
    setEdit(null);
    setSaved(false);
  }, [conversationId, path]);

  useEffect(() => {
    let cancelled = false;
    let objectUrl: string | null = null;
    setError(null);
    api.readFile(conversationId, path).then(
      async ({ bytes: buffer, etag }) => {
        const bytes = new Uint8Array(buffer);
        const extension = path.split('.').pop()?.toLowerCase() ?? '';
        let next: View;
        if (imageTypes[extension]) {
          objectUrl = URL.createObjectURL(new Blob([bytes], { type: imageTypes[extension] }));
          next = { kind: 'image', url: objectUrl, size: bytes.length };
        } else if (bytes.subarray(0, 8000).includes(0)) {
          next = { kind: 'binary', size: bytes.length };
        } else {
          const truncated = bytes.length > maxShownBytes;
          const whole = truncated ? null : decodeText(bytes);
          const text = whole ?? new TextDecoder().decode(bytes.subarray(0, maxShownBytes));
          next = { kind: 'text', text, html: await highlightFile(text, path), truncated, editable: whole !== null, size: bytes.length, etag };
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
  }, [conversationId, path, version, reloads]);

  const save = async (overwrite: boolean): Promise<void> => {
    if (!edit) return;
    setEdit({ ...edit, saving: true, error: null });
    try {
      await api.saveFile(conversationId, path, new Blob([edit.draft]), overwrite ? null : edit.base);
      setEdit(null);
      setSaved(true);
      setReloads((count) => count + 1);
    } catch (caught) {
      if (caught instanceof ApiError && caught.code === 'FILE_CHANGED') setEdit({ ...edit, saving: false, conflict: true });
      else setEdit({ ...edit, saving: false, error: caught instanceof ApiError ? caught.message : 'could not save the file' });
    }
  };

  const discard = (): void => {
    setEdit(null);
    setReloads((count) => count + 1);
  };

  return (
    <div className="file-viewer" role="region" aria-label={`File ${path}`}>
      <div className="file-viewer-header">
        <span className="file-viewer-path" title={path}>
          {path}
        </span>
        {saved && !edit ? <span className="muted small">Saved</span> : null}
        {view ? <span className="muted small">{formatBytes(view.size)}</span> : null}
        {view?.kind === 'text' && view.editable && !edit ? (
          <button
            type="button"
            className="icon-button"
            aria-label="Edit this file"
            title="Edit"
            onClick={() => {
              setSaved(false);
              setEdit({ draft: view.text, base: view.etag, saving: false, conflict: false, error: null });
            }}
          >
            <Icon name="edit" size={16} />
          </button>
        ) : null}
        <a className="icon-button" href={api.fileUrl(conversationId, path, true)} download aria-label="Download this file" title="Download">
          <Icon name="download" size={16} />
        </a>
        <button type="button" className="icon-button" aria-label="Close the file" onClick={onClose}>
          <Icon name="close" size={16} />
        </button>
      </div>
      <div className="file-viewer-body">
        {edit ? (
          <div className="file-editor">
            {edit.conflict ? (
              <div className="banner warning" role="alert">
                <p>
                  <strong>This file changed since you started editing it</strong> (the agent may have written it). Your changes were not saved, and the
                  file was left as it is.
                </p>
                <div className="file-editor-actions">
                  <button type="button" className="button small" onClick={discard}>
                    Discard my changes and load the new version
                  </button>
                  <button type="button" className="button small danger-text" disabled={edit.saving} onClick={() => void save(true)}>
                    Overwrite it with mine
                  </button>
                </div>
              </div>
            ) : null}
            {edit.error ? <p className="error-text small">{edit.error}</p> : null}
            <textarea
              aria-label={`Contents of ${path}`}
              className="file-editor-text"
              spellCheck={false}
              value={edit.draft}
              onChange={(event) => setEdit({ ...edit, draft: event.target.value })}
              onKeyDown={(event) => {
                if ((event.ctrlKey || event.metaKey) && event.key === 's') {
                  event.preventDefault();
                  if (!edit.conflict) void save(false);
                }
              }}
            />
            <div className="file-editor-actions">
              <button type="button" className="button small primary" disabled={edit.saving || edit.conflict} onClick={() => void save(false)}>
                {edit.saving ? 'Saving…' : 'Save'}
              </button>
              <button type="button" className="button small ghost" disabled={edit.saving} onClick={() => setEdit(null)}>
                Cancel
              </button>
            </div>
          </div>
        ) : (
          <>
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
          </>
        )}
      </div>
    </div>
  );
}
