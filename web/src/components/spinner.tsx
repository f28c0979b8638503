export function Spinner({ label }: { label?: string }) {
  return (
    <span className="spinner" role="status" aria-label={label ?? 'Loading'}>
      <span className="spinner-dot" />
      {label ? <span className="spinner-label">{label}…</span> : null}
    </span>
  );
}
