// The room's way in: a button that opens a full-screen card with the vote URL and its QR code,
// large enough to scan from the back of a room on a projector. The URL and the code come from the
// gateway (GET /system/public-url); `?join` in the page's address opens the card at once.
import { useCallback, useEffect, useState, type CSSProperties } from 'react';

interface PublicUrl {
  url: string;
  qr: string;
}

type Loaded = { state: 'loading' } | { state: 'ready'; invite: PublicUrl } | { state: 'failed'; message: string };

async function fetchPublicUrl(signal: AbortSignal): Promise<PublicUrl> {
  const response = await fetch('/system/public-url', { cache: 'no-store', headers: { accept: 'application/json' }, signal });
  const body = (await response.json().catch(() => ({}))) as Partial<PublicUrl> & { error?: string };
  if (!response.ok || typeof body.url !== 'string' || typeof body.qr !== 'string') throw new Error(body.error ?? `HTTP ${response.status}`);
  return { url: body.url, qr: body.qr };
}

const overlay: CSSProperties = {
  position: 'fixed',
  inset: 0,
  zIndex: 1000,
  display: 'flex',
  flexDirection: 'column',
  alignItems: 'center',
  justifyContent: 'center',
  gap: '2vh',
  background: '#fff',
  color: '#111',
};
const code: CSSProperties = { width: 'min(72vh, 90vw)', height: 'min(72vh, 90vw)', imageRendering: 'pixelated' };
const address: CSSProperties = { font: '600 clamp(1.2rem, 4.5vh, 3.2rem)/1.2 system-ui, sans-serif', wordBreak: 'break-all', textAlign: 'center', margin: 0 };
const hint: CSSProperties = { font: '400 clamp(0.9rem, 2vh, 1.3rem) system-ui, sans-serif', color: '#555', margin: 0 };
const button: CSSProperties = {
  font: 'inherit',
  padding: '0.4em 0.9em',
  borderRadius: '999px',
  border: '1px solid currentColor',
  background: 'transparent',
  color: 'inherit',
  cursor: 'pointer',
};

export function RoomInvite({ label = 'Scan to vote' }: { label?: string }) {
  const [open, setOpen] = useState(() => new URLSearchParams(window.location.search).has('join'));
  const [loaded, setLoaded] = useState<Loaded>({ state: 'loading' });
  const close = useCallback(() => setOpen(false), []);

  useEffect(() => {
    if (!open) return;
    const abort = new AbortController();
    fetchPublicUrl(abort.signal).then(
      (invite) => setLoaded({ state: 'ready', invite }),
      (error: Error) => !abort.signal.aborted && setLoaded({ state: 'failed', message: error.message }),
    );
    const onKey = (event: KeyboardEvent) => event.key === 'Escape' && close();
    window.addEventListener('keydown', onKey);
    return () => {
      abort.abort();
      window.removeEventListener('keydown', onKey);
    };
  }, [open, close]);

  return (
    <>
      <button type="button" style={button} data-testid="invite-open" onClick={() => setOpen(true)}>
        {label}
      </button>
      {open && (
        <div role="dialog" aria-modal="true" aria-label={label} style={overlay} data-testid="invite">
          {loaded.state === 'ready' && (
            <>
              <img
                data-testid="invite-qr"
                alt={`QR code of ${loaded.invite.url}`}
                style={code}
                src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(loaded.invite.qr)}`}
              />
              <p style={address} data-testid="invite-url">
                {loaded.invite.url}
              </p>
            </>
          )}
          {loaded.state === 'loading' && <p style={hint}>Loading…</p>}
          {loaded.state === 'failed' && (
            <p style={hint} data-testid="invite-error">
              No vote URL to show ({loaded.message}): start the app with HOST=0.0.0.0, or set PUBLIC_URL.
            </p>
          )}
          {/* biome-ignore lint/a11y/noAutofocus: the dialog covers the page; Esc or Enter closes it */}
          <button type="button" style={button} data-testid="invite-close" onClick={close} autoFocus>
            Close (Esc)
          </button>
        </div>
      )}
    </>
  );
}
