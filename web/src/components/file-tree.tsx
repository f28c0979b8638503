import { useCallback, useEffect, useRef, useState, type DragEvent } from 'react';
import { api, ApiError } from '../api/client.ts';
import type { WorkspaceEntry } from '../api/types.ts';
import { formatBytes } from '../lib/format.ts';
import { FileViewer } from './file-viewer.tsx';
import { Icon } from './icons.tsx';
import { Spinner } from './spinner.tsx';

interface Upload {
  path: string;
  state: 'uploading' | 'done' | 'failed';
  error?: string;
}

/** What the tree holds of one directory: the pages loaded so far, and where the next one starts (null: none). */
interface Listing {
  entries: WorkspaceEntry[];
  nextCursor: string | null;
}

const join = (directory: string, name: string): string => (directory ? `${directory}/${name}` : name);
const parentOf = (directory: string): string => directory.split('/').slice(0, -1).join('/');

/** Whether a directory's contents show: it and every directory above it are expanded (the root always shows). */
function contentsShown(directory: string, expanded: Set<string>): boolean {
  const names = directory ? directory.split('/') : [];
  return names.every((_, index) => expanded.has(names.slice(0, index + 1).join('/')));
}

/** Where uploads go: the chosen directory while its contents show, else the nearest shown one above it. */
function visibleTarget(chosen: string, expanded: Set<string>): string {
  let target = chosen;
  while (target !== '' && !contentsShown(target, expanded)) target = parentOf(target);
  return target;
}

/**
 * The workspace's files: a lazily loaded tree, a page of entries at a time ("Show more"; reloaded when `version`
 * changes, i.e. after the agent wrote), a viewer, downloads of a file or a zip, and uploads by drag and drop into
 * the folder last opened, as long as its contents show (else the nearest shown folder above it).
 */
export function FileTree({ conversationId, version }: { conversationId: string; version: number }) {
  const [listings, setListings] = useState<Map<string, Listing>>(new Map());
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const [errors, setErrors] = useState<Map<string, string>>(new Map());
  const [chosen, setChosen] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const expandedRef = useRef(expanded);
  expandedRef.current = expanded;
  const listingsRef = useRef(listings);
  listingsRef.current = listings;
  const input = useRef<HTMLInputElement>(null);
  const target = visibleTarget(chosen, expanded);

  const setError = useCallback((directory: string, message: string | null) => {
    setErrors((current) => {
      const next = new Map(current);
      if (message === null) next.delete(directory);
      else next.set(directory, message);
      return next;
    });
  }, []);

  /** Loads a directory's first page, and as many more as were shown before, so that a refresh keeps the view. */
  const load = useCallback(
    async (directory: string) => {
      const shown = listingsRef.current.get(directory)?.entries.length ?? 0;
      try {
        let page = await api.listFiles(conversationId, directory);
        const entries = [...page.entries];
        while (page.nextCursor !== null && entries.length < shown) {
          page = await api.listFiles(conversationId, directory, { cursor: page.nextCursor });
          entries.push(...page.entries);
        }
        setListings((current) => new Map(current).set(directory, { entries, nextCursor: page.nextCursor }));
        setError(directory, null);
      } catch (error) {
        setError(directory, error instanceof ApiError ? error.message : 'could not list');
      }
    },
    [conversationId, setError],
  );

  const loadMore = async (directory: string): Promise<void> => {
    const cursor = listingsRef.current.get(directory)?.nextCursor;
    if (!cursor) return;
    try {
      const page = await api.listFiles(conversationId, directory, { cursor });
      setListings((current) => {
        const before = current.get(directory);
        if (before?.nextCursor !== cursor) return current; // reloaded meanwhile
        return new Map(current).set(directory, { entries: [...before.entries, ...page.entries], nextCursor: page.nextCursor });
      });
    } catch (error) {
      setError(directory, error instanceof ApiError ? error.message : 'could not list');
    }
  };

  const reload = useCallback(() => {
    void load('');
    for (const directory of expandedRef.current) void load(directory);
  }, [load]);

  useEffect(reload, [reload, version]);

  const toggle = (directory: string): void => {
    setChosen(directory);
    setExpanded((current) => {
      const next = new Set(current);
      if (next.has(directory)) next.delete(directory);
      else {
        next.add(directory);
        void load(directory);
      }
      return next;
    });
  };

  const uploadFiles = async (files: { path: string; file: File }[]): Promise<void> => {
    if (files.length === 0) return;
    setUploads((current) => [...files.map((item) => ({ path: item.path, state: 'uploading' as const })), ...current].slice(0, 20));
    for (const item of files) {
      let result: Upload;
      try {
        await api.upload(conversationId, item.path, item.file);
        result = { path: item.path, state: 'done' };
      } catch (error) {
        result = { path: item.path, state: 'failed', error: error instanceof ApiError ? error.message : 'upload failed' };
      }
      setUploads((current) => current.map((upload) => (upload.path === item.path && upload.state === 'uploading' ? result : upload)));
    }
    reload();
  };

  const drop = async (event: DragEvent): Promise<void> => {
    event.preventDefault();
    setDragging(false);
    await uploadFiles(await droppedFiles(event.dataTransfer, target));
  };

  const root = listings.get('');
  const targetLabel = `/workspace${target ? `/${target}` : ''}`;
  return (
    <div
      className={`file-panel${dragging ? ' dragging' : ''}`}
      onDragOver={(event) => {
        if (!event.dataTransfer.types.includes('Files')) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = 'copy';
        setDragging(true);
      }}
      onDragLeave={(event) => {
        if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setDragging(false);
      }}
      onDrop={(event) => void drop(event)}
    >
      <div className="file-toolbar">
        <span className="small upload-target" title="Dropped and uploaded files go here: the folder you opened last, while its contents show">
          <span className="muted">Upload to </span>
          <span className="upload-target-path" data-testid="upload-target">
            {targetLabel}
          </span>
        </span>
        <span className="spacer" />
        <button type="button" className="icon-button" aria-label="Refresh the file tree" title="Refresh" onClick={reload}>
          <Icon name="refresh" size={16} />
        </button>
        <button type="button" className="icon-button" aria-label="Upload files" title={`Upload files to ${targetLabel}`} onClick={() => input.current?.click()}>
          <Icon name="upload" size={16} />
        </button>
        <a className="icon-button" href={api.archiveUrl(conversationId)} download aria-label="Download the workspace as a zip" title="Download the workspace (zip)">
          <Icon name="download" size={16} />
        </a>
        <input
          ref={input}
          type="file"
          multiple
          hidden
          onChange={(event) => {
            const files = [...(event.target.files ?? [])].map((file) => ({ path: join(target, file.name), file }));
            event.target.value = '';
            void uploadFiles(files);
          }}
        />
      </div>
      <div className="file-tree" role="tree" aria-label="Workspace files">
        {errors.get('') ? <p className="error-text small">{errors.get('')}</p> : null}
        {!root && !errors.get('') ? <Spinner label="Loading files" /> : null}
        {root && root.entries.length === 0 ? <p className="muted small empty-files">No files yet. Drop files here to upload them, or ask the agent to write some.</p> : null}
        {root ? (
          <Entries
            directory=""
            listing={root}
            depth={0}
            listings={listings}
            expanded={expanded}
            errors={errors}
            target={target}
            open={open}
            conversationId={conversationId}
            onToggle={toggle}
            onOpen={(file) => setOpen(file)}
            onMore={(directory) => void loadMore(directory)}
          />
        ) : null}
      </div>
      {uploads.length > 0 ? (
        <ul className="uploads" aria-label="Uploads">
          {uploads.map((upload, index) => (
            <li key={`${upload.path}-${index}`} className={upload.state}>
              <span>{upload.path}</span>
              <span className="small">{upload.state === 'uploading' ? <Spinner /> : upload.state === 'done' ? 'uploaded' : upload.error}</span>
            </li>
          ))}
          <li>
            <button type="button" className="button small ghost" onClick={() => setUploads([])}>
              Clear
            </button>
          </li>
        </ul>
      ) : null}
      {dragging ? <div className="drop-overlay">Drop to upload into {targetLabel}</div> : null}
      {open ? <FileViewer conversationId={conversationId} path={open} version={version} onClose={() => setOpen(null)} /> : null}
    </div>
  );
}

function Entries(props: {
  directory: string;
  listing: Listing;
  depth: number;
  listings: Map<string, Listing>;
  expanded: Set<string>;
  errors: Map<string, string>;
  target: string;
  open: string | null;
  conversationId: string;
  onToggle(directory: string): void;
  onOpen(file: string): void;
  onMore(directory: string): void;
}) {
  const { directory, listing, depth, listings, expanded, errors, target, open, conversationId, onToggle, onOpen, onMore } = props;
  return (
    <ul role="group">
      {listing.entries.map((entry) => {
        const entryPath = join(directory, entry.name);
        const isDirectory = entry.type === 'directory';
        const isOpen = expanded.has(entryPath);
        const children = listings.get(entryPath);
        return (
          <li key={entry.name} role="treeitem" aria-expanded={isDirectory ? isOpen : undefined} aria-selected={open === entryPath || target === entryPath}>
            <div className={`file-row${open === entryPath ? ' open' : ''}${target === entryPath && isDirectory ? ' target' : ''}`} style={{ paddingLeft: `${0.5 + depth * 0.9}rem` }}>
              <button type="button" className="file-name" onClick={() => (isDirectory ? onToggle(entryPath) : onOpen(entryPath))} title={entryPath}>
                {isDirectory ? <span className={`chevron${isOpen ? ' down' : ''}`}><Icon name="chevron" size={12} /></span> : <span className="chevron" />}
                <Icon name={isDirectory ? 'folder' : entry.type === 'symlink' ? 'link' : 'file'} size={15} />
                <span className="name">{entry.name}</span>
              </button>
              {target === entryPath && isDirectory ? <span className="target-badge small">upload target</span> : null}
              {entry.type === 'file' ? <span className="file-size">{formatBytes(entry.size)}</span> : null}
              {entry.type === 'file' ? (
                <a className="icon-button tiny" href={api.fileUrl(conversationId, entryPath, true)} download aria-label={`Download ${entry.name}`} title="Download">
                  <Icon name="download" size={14} />
                </a>
              ) : isDirectory ? (
                <a className="icon-button tiny" href={api.archiveUrl(conversationId, entryPath)} download aria-label={`Download ${entry.name} as a zip`} title="Download as zip">
                  <Icon name="download" size={14} />
                </a>
              ) : null}
            </div>
            {isDirectory && isOpen ? (
              errors.get(entryPath) ? (
                <p className="error-text small" style={{ paddingLeft: `${1.5 + depth * 0.9}rem` }}>
                  {errors.get(entryPath)}
                </p>
              ) : children ? (
                children.entries.length ? (
                  <Entries {...props} directory={entryPath} listing={children} depth={depth + 1} />
                ) : (
                  <p className="muted small" style={{ paddingLeft: `${2 + depth * 0.9}rem` }}>
                    empty
                  </p>
                )
              ) : (
                <Spinner />
              )
            ) : null}
          </li>
        );
      })}
      {listing.nextCursor !== null ? (
        <li className="show-more" style={{ paddingLeft: `${1.6 + depth * 0.9}rem` }}>
          <button type="button" className="button small ghost" onClick={() => onMore(directory)} aria-label={`Show more of /workspace${directory ? `/${directory}` : ''}`}>
            Show more
          </button>
          <span className="muted small">{listing.entries.length} shown</span>
        </li>
      ) : null}
    </ul>
  );
}

/** The files of a drop, folders walked recursively, each with its workspace path under `directory`. */
async function droppedFiles(transfer: DataTransfer, directory: string): Promise<{ path: string; file: File }[]> {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry?.()).filter((entry): entry is FileSystemEntry => Boolean(entry));
  if (entries.length === 0) return [...transfer.files].map((file) => ({ path: join(directory, file.name), file }));
  const files: { path: string; file: File }[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    const entryPath = join(prefix, entry.name);
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      files.push({ path: entryPath, file });
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        for (const child of batch) await walk(child, entryPath);
      }
    }
  };
  for (const entry of entries) await walk(entry, directory);
  return files;
}
