// Services: the kuma.io/service values of the dataplanes, one mesh or
// all; a service page with its dataplanes, the policies that name it and
// its edges in the service map.
import * as api from './api.js';
import * as model from './model.js';
import { h, href, link, badge, table, pageHead, searchInput, stat, onlineBar, statusBadge, fmtRate, fmtPercent, errorClass, swap, liveNote } from './dom.js';
import { serviceTable } from './view-overview.js';
import { drawMap, narrow } from './graph.js';

const REFRESH_MS = 5000;

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export async function servicesView(ctx) {
  const mesh = ctx.params.mesh || '';
  ctx.title(mesh ? `Services of ${mesh}` : 'Services');
  const services = model.serviceStats(await api.list(api.paths.overviews(mesh), { signal: ctx.signal }));
  let q = ctx.query.get('q') || '';
  const slot = h('div');
  const count = h('span', { class: 'count', 'aria-live': 'polite' });
  const update = () => {
    const rows = services.filter((s) => !q || s.name.toLowerCase().includes(q.toLowerCase()));
    slot.replaceChildren(serviceTable(rows, !mesh));
    count.textContent = `${rows.length} of ${services.length}`;
    ctx.setQuery({ q });
  };
  update();
  return h('div', {},
    pageHead(mesh ? 'Services' : 'Services in all meshes', {
      crumbs: mesh ? [link('Overview'), link(mesh, 'meshes', mesh)] : [link('Overview')],
    }),
    h('div', { class: 'toolbar', role: 'search' }, searchInput('Search services', q, (v) => { q = v; update(); }), count),
    slot);
}

export async function serviceView(ctx) {
  const { mesh, name } = ctx.params;
  ctx.title(`${name} (${mesh})`);
  const opts = { signal: ctx.signal };
  const [overviews, kinds] = await Promise.all([api.list(api.paths.overviews(mesh), opts), model.policyKinds()]);
  const dps = overviews.filter((o) => model.services(o.dataplane).includes(name));
  const st = model.serviceStats(dps).find((s) => s.name === name) || { total: 0, online: 0, offline: 0, protocol: '—' };
  const policies = (await Promise.all(kinds.map(async (k) => {
    const items = await api.list(api.paths.policies(mesh, k.path), opts).catch(() => []);
    return items.map((p) => ({ kind: k, p, where: model.policyTargets(p, name) })).filter((x) => x.where.length);
  }))).flat();

  const edgesSlot = h('div', {}, h('p', { class: 'muted' }, 'Loading the service map…'));
  const loadEdges = async () => {
    const map = await api.optional(api.paths.serviceMap(mesh), opts);
    swap(edgesSlot, edgesView(map, mesh, name));
  };
  await loadEdges().catch((err) => { if (err.name === 'AbortError') throw err; edgesSlot.replaceChildren(h('p', { class: 'muted' }, `Not available: ${err.title || err.message}`)); });
  ctx.every(REFRESH_MS, loadEdges);

  return h('div', {},
    pageHead(name, {
      crumbs: [link('Overview'), link(mesh, 'meshes', mesh), link('Services', 'meshes', mesh, 'services')],
      sub: [badge('Service', 'info', true), h('span', { class: 'muted' }, st.protocol), liveNote('Live · traffic refreshed every 5 s')],
    }),
    h('div', { class: 'grid stats' },
      stat('Dataplanes', st.total, `${st.online} online · ${st.offline} offline`, onlineBar(st.online, st.offline)),
      stat('Policies naming it', policies.length, plural(new Set(policies.map((x) => x.kind.name)).size, 'kind'))),
    h('section', { class: 'section' }, h('h2', {}, 'Dataplanes'),
      table([
        { label: 'Name', cell: (o) => link(o.name, 'meshes', mesh, 'dataplanes', o.name) },
        { label: 'Status', cell: (o) => statusBadge(model.status(o)) },
        { label: 'Address', cell: (o) => h('span', { class: 'mono' }, model.address(o.dataplane)) },
        { label: 'Version', cell: (o) => model.version(o) || '—' },
      ], dps, { empty: 'No dataplane serves this service.' })),
    h('section', { class: 'section' }, h('h2', {}, 'Policies naming this service'),
      table([
        { label: 'Kind', cell: (x) => x.kind.name },
        { label: 'Name', cell: (x) => link(x.p.name, 'meshes', mesh, 'policies', x.kind.path, x.p.name) },
        { label: 'Where', cell: (x) => h('span', { class: 'chips' }, x.where.map((w) => h('span', { class: 'chip' }, w))) },
      ], policies, { empty: 'No policy names this service; mesh-wide policies still apply (see a dataplane\'s matched policies).' })),
    h('section', { class: 'section' },
      h('h2', {}, 'Traffic'),
      h('p', { class: 'small' }, h('a', { href: href('meshes', mesh, 'map') }, 'Open the service map →')),
      edgesSlot));
}

function edgesView(map, mesh, name) {
  if (!map) return h('p', { class: 'muted' }, 'This control plane serves no service map.');
  const edges = map.edges || [];
  const incoming = edges.filter((e) => e.destination === name);
  const outgoing = edges.filter((e) => e.source === name);
  const cols = (other, label) => [
    { label, cell: (e) => link(e[other], 'meshes', mesh, 'services', e[other]) },
    { label: 'Rate', num: true, cell: (e) => fmtRate(e.requestsPerSecond) },
    { label: 'Errors', num: true, cell: (e) => badge(fmtPercent(e.errorRate), errorClass(e.errorRate), true) },
    { label: 'Requests', num: true, cell: (e) => String(e.requests ?? 0) },
  ];
  const near = new Set([name, ...incoming.map((e) => e.source), ...outgoing.map((e) => e.destination)]);
  const graph = incoming.length || outgoing.length
    ? h('div', { class: 'map-wrap' }, drawMap(mesh, (map.services || []).filter((x) => near.has(x.name)), [...incoming, ...outgoing], { vertical: narrow() }))
    : null;
  return h('div', {},
    graph,
    h('div', { class: 'grid wide' },
    h('div', {}, h('h3', {}, 'Called by'), table(cols('source', 'Caller'), incoming, { empty: 'No caller in the last window.' })),
    h('div', {}, h('h3', {}, 'Calls'), table(cols('destination', 'Destination'), outgoing, { empty: 'No call in the last window.' }))));
}

