// Trellis GUI entry: the shell (navigation, mesh picker, banner) and a
// hash router (#/meshes/default/dataplanes/dp-1) that renders views.
import * as api from './api.js';
import { h, errorBox } from './dom.js';
import { overviewView } from './view-overview.js';
import { dataplanesView } from './view-dataplanes.js';
import { dataplaneView } from './view-dataplane.js';
import { servicesView, serviceView } from './view-services.js';
import { kindsView, policiesView, policyView } from './view-policies.js';
import { mapView } from './view-map.js';
import { zonesView, zoneView } from './view-zones.js';

// Routes: patterns of path segments; ":x" binds a parameter. The first
// match wins. section names the navigation item that is current.
const routes = [
  { p: [], view: overviewView, section: 'overview' },
  { p: ['meshes', ':mesh'], view: overviewView, section: 'overview' },
  { p: ['dataplanes'], view: dataplanesView, section: 'dataplanes' },
  { p: ['meshes', ':mesh', 'dataplanes'], view: dataplanesView, section: 'dataplanes' },
  { p: ['meshes', ':mesh', 'dataplanes', ':name'], view: dataplaneView, section: 'dataplanes' },
  { p: ['services'], view: servicesView, section: 'services' },
  { p: ['meshes', ':mesh', 'services'], view: servicesView, section: 'services' },
  { p: ['meshes', ':mesh', 'services', ':name'], view: serviceView, section: 'services' },
  { p: ['policies'], view: kindsView, section: 'policies' },
  { p: ['meshes', ':mesh', 'policies'], view: kindsView, section: 'policies' },
  { p: ['policies', ':kind'], view: policiesView, section: 'policies' },
  { p: ['meshes', ':mesh', 'policies', ':kind'], view: policiesView, section: 'policies' },
  { p: ['meshes', ':mesh', 'policies', ':kind', ':name'], view: policyView, section: 'policies' },
  { p: ['map'], view: mapView, section: 'map' },
  { p: ['meshes', ':mesh', 'map'], view: mapView, section: 'map' },
  { p: ['zones'], view: zonesView, section: 'zones' },
  { p: ['zones', ':name'], view: zoneView, section: 'zones' },
];

const sections = [
  ['overview', 'Overview'],
  ['dataplanes', 'Dataplanes'],
  ['services', 'Services'],
  ['policies', 'Policies'],
  ['map', 'Service map'],
  ['zones', 'Zones'],
];

/** parseHash splits "#/a/b%2Fc?x=1" into segments and query. */
function parseHash() {
  if (!location.hash.startsWith('#/')) return { segments: [], query: new URLSearchParams() };
  const raw = location.hash.slice(2);
  const [path, query = ''] = raw.split('?');
  const segments = path.split('/').filter(Boolean).map((x) => {
    try { return decodeURIComponent(x); } catch { return x; }
  });
  return { segments, query: new URLSearchParams(query) };
}

function match(segments) {
  for (const r of routes) {
    if (r.p.length !== segments.length) continue;
    const params = {};
    let ok = true;
    r.p.forEach((p, i) => {
      if (p.startsWith(':')) params[p.slice(1)] = segments[i];
      else if (p !== segments[i]) ok = false;
    });
    if (ok) return { route: r, params };
  }
  return null;
}

/** sectionHref is where a navigation item points for a mesh ('' = all). */
export function sectionHref(section, mesh) {
  const m = mesh ? `meshes/${encodeURIComponent(mesh)}` : '';
  if (section === 'overview') return `#/${m}`;
  if (section === 'zones') return '#/zones';
  return `#/${m ? m + '/' : ''}${section}`;
}

// mode is the control plane's (GET /): the Zones item shows on a global or
// zone control plane, and on the Zones pages themselves.
const state = { mesh: '', section: '', ctx: null, meshes: [], first: true, mode: '' };

function renderNav() {
  const nav = document.getElementById('nav');
  const shown = sections.filter(([id]) => id !== 'zones' || state.section === 'zones' || (state.mode && state.mode !== 'standalone'));
  nav.replaceChildren(...shown.map(([id, label]) => h('li', {},
    h('a', { href: sectionHref(id, state.mesh), 'aria-current': id === state.section ? 'page' : null }, label))));
  const sel = document.getElementById('mesh-select');
  const opts = [h('option', { value: '' }, 'All meshes'), ...state.meshes.map((m) => h('option', { value: m }, m))];
  if (state.mesh && !state.meshes.includes(state.mesh)) opts.push(h('option', { value: state.mesh }, state.mesh));
  sel.replaceChildren(...opts);
  sel.value = state.mesh;
}

async function loadMeshes() {
  try {
    const meshes = await api.list(api.paths.meshes());
    state.meshes = meshes.map((m) => m.name).sort();
    renderNav();
  } catch {
    // The view reports API failures; the picker keeps what it has.
  }
}

/** Context is what a view gets: params, query, an abort signal and timers. */
class Context {
  constructor(params, query, main) {
    this.params = params;
    this.query = query;
    this.main = main;
    this.ctrl = new AbortController();
    this.signal = this.ctrl.signal;
    this.timers = [];
    this.meshes = state.meshes;
  }

  /** every runs fn every ms milliseconds while the view is shown. */
  every(ms, fn) {
    const id = setInterval(async () => {
      if (this.signal.aborted || document.hidden) return;
      try { await fn(); } catch (err) {
        if (err.name !== 'AbortError') this.stale(err);
      }
    }, ms);
    this.timers.push(id);
  }

  stale(err) {
    const el = this.main.querySelector('[data-live]');
    if (el) el.textContent = `Not refreshed: ${err.title || err.message}`;
  }

  /** setQuery rewrites the hash's query without rendering again. */
  setQuery(values) {
    for (const [k, v] of Object.entries(values)) {
      if (v === '' || v === null || v === undefined) this.query.delete(k);
      else this.query.set(k, v);
    }
    const base = location.hash.split('?')[0];
    const q = this.query.toString();
    history.replaceState(null, '', q ? `${base}?${q}` : base);
  }

  title(text) {
    document.title = text ? `${text} · Trellis` : 'Trellis';
  }

  close() {
    this.ctrl.abort();
    this.timers.forEach(clearInterval);
  }
}

async function render() {
  // Other hashes are in-page anchors; on the first render they mean the overview.
  if (location.hash && !location.hash.startsWith('#/') && !state.first) return;
  const { segments, query } = parseHash();
  const main = document.getElementById('main');
  state.ctx?.close();
  const m = match(segments);
  state.mesh = m?.params.mesh || '';
  state.section = m?.route.section || '';
  renderNav();
  const ctx = new Context(m?.params || {}, query, main);
  state.ctx = ctx;
  if (!m) {
    ctx.title('Not found');
    main.replaceChildren(h('div', { class: 'page-head' }, h('h1', {}, 'Page not found')),
      h('p', {}, 'No page lives at ', h('code', {}, location.hash), '. ', h('a', { href: '#/' }, 'Back to the overview'), '.'));
    return;
  }
  main.setAttribute('aria-busy', 'true');
  try {
    const node = await m.route.view(ctx);
    if (ctx.signal.aborted) return;
    main.replaceChildren(node);
  } catch (err) {
    if (err.name === 'AbortError' || ctx.signal.aborted) return;
    ctx.title('Error');
    main.replaceChildren(h('div', { class: 'page-head' }, h('h1', {}, 'Could not load this page')), errorBox(err),
      h('p', {}, h('a', { href: '#/' }, 'Back to the overview')));
  } finally {
    if (!ctx.signal.aborted) main.removeAttribute('aria-busy');
  }
  if (!state.first) {
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  state.first = false;
}

function showTokenBanner() {
  const banner = document.getElementById('banner');
  if (!banner.hidden) return;
  const input = h('input', { type: 'password', 'aria-label': 'Admin user token', placeholder: 'Admin user token', autocomplete: 'off' });
  banner.replaceChildren(
    h('strong', {}, 'The API needs an admin user token. '),
    h('span', {}, 'Requests from the control plane\'s own host need none; from elsewhere, paste a token (trellisctl generate user-token).'),
    h('form', { onsubmit: (e) => { e.preventDefault(); api.setToken(input.value.trim()); banner.hidden = true; render(); loadMeshes(); } },
      input, h('button', { type: 'submit', class: 'primary' }, 'Use token')));
  banner.hidden = false;
}

async function loadVersion() {
  try {
    const info = await api.get(api.paths.index());
    const mode = info.mode && info.mode !== 'standalone' ? ` · ${info.mode}${info.zone ? ` ${info.zone}` : ''}` : '';
    document.getElementById('version').textContent = `${info.product || 'Trellis'} ${info.version || ''}`.trim() + mode;
    state.mode = info.mode || 'standalone';
    renderNav();
  } catch {
    // The footer keeps its default text.
  }
}

function start() {
  api.setUnauthorizedHandler(showTokenBanner);
  document.getElementById('mesh-select').addEventListener('change', (e) => {
    location.hash = sectionHref(state.section || 'overview', e.target.value);
  });
  window.addEventListener('hashchange', render);
  // The skip link focuses the page's content without changing the route.
  document.querySelector('.skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    document.getElementById('main').focus();
  });
  // "/" jumps to the page's search box, as on many sites.
  document.addEventListener('keydown', (e) => {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) return;
    const box = document.querySelector('main input[type="search"]');
    if (box) { e.preventDefault(); box.focus(); box.select(); }
  });
  renderNav();
  render();
  loadMeshes();
  loadVersion();
}

start();
