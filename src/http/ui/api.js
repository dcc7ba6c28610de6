// The public REST API, as the page uses it: same origin, JSON, the bearer token (when the service
// has one) in the Authorization header of every call. Requests a browser makes by itself (the live
// feed's EventSource, <img> thumbnails, the video player's stream) carry the read-only session
// cookie that POST /dashboard/session sets instead.

const TOKEN_KEY = 'streamfleet.token';

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export const auth = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(t) {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** One API call; resolves with the JSON body of a 2xx answer, rejects with ApiError otherwise. */
export async function call(method, path, body, opts = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const token = opts.token ?? auth.token;
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { message: text };
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/**
 * Makes sure the page may read: 'open' (no token configured), 'ok' (a session cookie is set and
 * the token, if the tab has one, works), or 'need-token'.
 */
export async function ensureSession() {
  try {
    const s = await call('GET', '/dashboard/session', undefined, { token: '' });
    if (s.auth === 'none') return 'open';
    // A cookie from earlier: reading works; changes still need the token in this tab.
    if (auth.token) return 'ok';
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
  }
  if (!auth.token) return 'need-token';
  return (await signIn(auth.token)) ? 'ok' : 'need-token';
}

/** Trades the token (checked by the service) for the session cookie; false when it is refused. */
export async function signIn(token) {
  try {
    await call('POST', '/dashboard/session', undefined, { token });
    auth.token = token;
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      auth.token = null;
      return false;
    }
    throw err;
  }
}

export async function signOut() {
  await call('DELETE', '/dashboard/session').catch(() => undefined);
  auth.token = null;
}
