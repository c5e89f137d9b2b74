// Session tokens kept in sessionStorage, one per wallet address (pure: the storage is passed in).

export const KEY_PREFIX = "blendr.session.";

export function sessionKey(address: string): string {
  return KEY_PREFIX + address.toLowerCase();
}

/** A stored token for this address that is still valid for at least a minute, or null. */
export function storedToken(storage: Storage, address: string, nowUnix: number): string | null {
  const raw = storage.getItem(sessionKey(address));
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as { token?: unknown; expires?: unknown };
    if (typeof s.token === "string" && typeof s.expires === "number" && s.expires > nowUnix + 60) return s.token;
  } catch {
    /* a damaged entry is dropped below */
  }
  storage.removeItem(sessionKey(address));
  return null;
}
