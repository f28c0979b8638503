import { Link } from '../router.tsx';

export function NotFoundPage({ what = 'Page' }: { what?: string }) {
  return (
    <div className="page">
      <div className="empty-state">
        <h1>{what} not found</h1>
        <p className="muted">It does not exist, or it is not yours to see.</p>
        <Link to="/" className="button">
          Back to your conversations
        </Link>
      </div>
    </div>
  );
}
