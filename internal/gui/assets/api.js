// The control plane's REST API, as the GUI reads it (same origin).

const TOKEN_KEY = 'trellis.token';

/** ApiError is a failed API call, with Kuma's std-errors title and detail. */
export class ApiError extends Error {
  constructor(status, title, detail, path) {
    super(`${title}: ${detail}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.path = path;
  }
}

let onUnauthorized = () => {};

/** setUnauthorizedHandler is called when the API answers 401. */
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** get fetches path and returns its JSON; it throws ApiError. */
export async function get(path, { signal } = {}) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch(path, { headers, signal, cache: 'no-store' });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'The control plane does not answer', `GET ${path}: ${err.message}`, path);
  }
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!resp.ok) {
    if (resp.status === 401) onUnauthorized();
    throw new ApiError(resp.status, body?.title || `HTTP ${resp.status}`, body?.detail || text.slice(0, 300) || resp.statusText, path);
  }
  if (body === null && text) throw new ApiError(resp.status, 'Not JSON', `GET ${path} did not answer JSON`, path);
  return body;
}

/**
 * optional is get for endpoints this control plane may not have:
 * it returns null on 404, 400 (not supported), 405 and 501.
 */
export async function optional(path, opts) {
  if (absent.has(path)) return null;
  try {
    return await get(path, opts);
  } catch (err) {
    if (err instanceof ApiError && [400, 404, 405, 501].includes(err.status)) {
      absent.add(path); // asked once per page load: the browser logs each 404
      return null;
    }
    throw err;
  }
}

const absent = new Set();

/** list fetches every page of a list ({total, items, next}). */
export async function list(path, opts = {}) {
  const sep = path.includes('?') ? '&' : '?';
  let url = `${path}${sep}size=1000`;
  const items = [];
  for (let i = 0; i < 100 && url; i++) {
    const page = await get(url, opts);
    items.push(...(page.items || []));
    url = null;
    if (page.next) {
      const next = new URL(page.next, location.href);
      url = next.pathname + next.search;
    }
  }
  return items;
}

/** total returns the number of items of a list without fetching them. */
export async function total(path, opts) {
  const sep = path.includes('?') ? '&' : '?';
  const page = await get(`${path}${sep}size=1`, opts);
  return page.total ?? (page.items || []).length;
}

const enc = encodeURIComponent;

/** paths of the endpoints the GUI reads. */
export const paths = {
  index: () => '/',
  resources: () => '/_resources',
  meshes: () => '/meshes',
  mesh: (m) => `/meshes/${enc(m)}`,
  globalInsight: () => '/global-insight',
  meshInsights: () => '/mesh-insights',
  serviceInsights: (m) => `/meshes/${enc(m)}/service-insights`,
  overviews: (m) => (m ? `/meshes/${enc(m)}/dataplanes+insights` : '/dataplanes+insights'),
  overview: (m, n) => `/meshes/${enc(m)}/dataplanes+insights/${enc(n)}`,
  rules: (m, n) => `/meshes/${enc(m)}/dataplanes/${enc(n)}/_rules`,
  config: (m, n) => `/meshes/${enc(m)}/dataplanes/${enc(n)}/_config`,
  policies: (m, plural) => (m ? `/meshes/${enc(m)}/${enc(plural)}` : `/${enc(plural)}`),
  policy: (m, plural, n) => `/meshes/${enc(m)}/${enc(plural)}/${enc(n)}`,
  policyDataplanes: (m, plural, n) => `/meshes/${enc(m)}/${enc(plural)}/${enc(n)}/_resources/dataplanes`,
  serviceMap: (m) => `/meshes/${enc(m)}/_service-map`,
  zoneOverviews: () => '/zones+insights',
  zoneOverview: (n) => `/zones+insights/${enc(n)}`,
  zoneIngresses: () => '/zoneingresses+insights',
  zoneEgresses: () => '/zoneegresses+insights',
  zoneDataplanes: (z) => `/dataplanes+insights?${enc('filter[labels.kuma.io/zone]')}=${enc(z)}`,
};
