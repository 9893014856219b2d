// Overview: meshes, services, proxies online/offline and mTLS per mesh,
// for every mesh (#/) or one (#/meshes/{mesh}).
import * as api from './api.js';
import * as model from './model.js';
import { h, href, link, badge, table, pageHead, stat, onlineBar, swap, liveNote } from './dom.js';
import { drawMap, narrow } from './graph.js';

const REFRESH_MS = 10000;

export async function overviewView(ctx) {
  const mesh = ctx.params.mesh || '';
  ctx.title(mesh ? `Mesh ${mesh}` : 'Overview');
  const root = h('div');
  const build = async () => swap(root, render(mesh, await load(mesh, ctx.signal)));
  await build();
  ctx.every(REFRESH_MS, build);
  return root;
}

async function load(mesh, signal) {
  const opts = { signal };
  const [meshes, meshInsights, globalInsight, overviews, kinds] = await Promise.all([
    mesh ? api.get(api.paths.mesh(mesh), opts).then((m) => [m]) : api.list(api.paths.meshes(), opts),
    api.optional(api.paths.meshInsights(), opts).then((r) => r?.items || null),
    mesh ? null : api.optional(api.paths.globalInsight(), opts),
    api.list(api.paths.overviews(mesh), opts),
    model.policyKinds(),
  ]);
  const serviceMap = mesh ? await api.optional(api.paths.serviceMap(mesh), opts) : null;
  const insightsByMesh = new Map((meshInsights || []).map((i) => [i.name, i]));
  const policyCounts = new Map();
  await Promise.all(meshes.map(async (m) => {
    const mi = insightsByMesh.get(m.name);
    if (mi?.policies) {
      policyCounts.set(m.name, Object.fromEntries(Object.entries(mi.policies).map(([k, v]) => [k, v.total || 0])));
      return;
    }
    const counts = {};
    await Promise.all(kinds.map(async (k) => {
      counts[k.name] = await api.total(api.paths.policies(m.name, k.path), opts).catch(() => 0);
    }));
    policyCounts.set(m.name, counts);
  }));
  return { meshes, insightsByMesh, globalInsight, overviews, kinds, policyCounts, serviceMap };
}

function sum(obj) {
  return Object.values(obj || {}).reduce((a, b) => a + b, 0);
}

function mtlsBadge(mesh) {
  const t = model.mtls(mesh);
  if (!t.enabled) return badge('mTLS off', 'warn');
  return badge(`mTLS ${t.mode.toLowerCase()}`, t.mode === 'PERMISSIVE' ? 'info' : 'ok');
}

function render(mesh, d) {
  const services = model.serviceStats(d.overviews);
  const dps = model.countStatus(d.overviews);
  const online = dps.online + dps.degraded;
  const policies = d.globalInsight?.policies?.total ?? [...d.policyCounts.values()].reduce((a, c) => a + sum(c), 0);
  const svcOnline = services.filter((s) => s.online > 0).length;
  const head = mesh
    ? pageHead(`Mesh ${mesh}`, { crumbs: [link('Overview')], sub: [mtlsBadge(d.meshes[0]), liveNote('Live · refreshed every 10 s')] })
    : pageHead('Overview', { sub: [h('span', { class: 'muted' }, `${d.meshes.length} mesh${d.meshes.length === 1 ? '' : 'es'}`), liveNote('Live · refreshed every 10 s')] });
  return h('div', {},
    head,
    h('div', { class: 'grid stats', role: 'group', 'aria-label': 'Totals' },
      mesh ? null : stat('Meshes', d.meshes.length, `${d.meshes.filter((m) => model.mtls(m).enabled).length} with mTLS`),
      stat('Services', services.length, `${svcOnline} with a proxy online`),
      stat('Dataplanes', dps.total, `${online} online · ${dps.offline} offline`, onlineBar(online, dps.offline)),
      stat('Policies', policies, `${d.kinds.length} kinds`),
      zonesStat(d.globalInsight)),
    mesh ? meshDetails(mesh, d) : meshCards(d),
    mesh && d.serviceMap?.edges?.length ? h('section', { class: 'section' },
      h('h2', {}, 'Traffic'),
      h('div', { class: 'map-wrap' }, drawMap(mesh, d.serviceMap.services || [], d.serviceMap.edges, { vertical: narrow() })),
      h('p', { class: 'small' }, h('a', { href: href('meshes', mesh, 'map') }, 'Open the live service map →'))) : null,
    h('section', { class: 'section' },
      h('h2', {}, 'Services'),
      serviceTable(services, !mesh)));
}

function meshCards(d) {
  return h('section', { class: 'section' },
    h('h2', {}, 'Meshes'),
    d.meshes.length ? h('div', { class: 'grid wide' }, d.meshes.map((m) => meshCard(m, d))) : h('p', { class: 'empty-state' }, 'No mesh yet.'));
}

function meshCard(m, d) {
  const ovs = d.overviews.filter((o) => o.mesh === m.name);
  const c = model.countStatus(ovs);
  const online = c.online + c.degraded;
  const svcs = model.serviceStats(ovs).length;
  const t = model.mtls(m);
  return h('article', { class: 'card mesh-card' },
    h('h3', {}, h('a', { href: href('meshes', m.name) }, m.name), mtlsBadge(m)),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Dataplanes'), h('dd', {}, `${online} online / ${c.total}`),
      h('dt', {}, 'Services'), h('dd', {}, String(svcs)),
      h('dt', {}, 'Policies'), h('dd', {}, String(sum(d.policyCounts.get(m.name)))),
      h('dt', {}, 'mTLS'), h('dd', {}, t.enabled ? `${t.backend} (${t.type || 'builtin'}, ${t.mode})` : 'off')),
    onlineBar(online, c.offline),
    h('div', { class: 'links' },
      h('a', { href: href('meshes', m.name, 'dataplanes') }, 'Dataplanes'),
      h('a', { href: href('meshes', m.name, 'services') }, 'Services'),
      h('a', { href: href('meshes', m.name, 'policies') }, 'Policies'),
      h('a', { href: href('meshes', m.name, 'map') }, 'Service map')));
}

function meshDetails(mesh, d) {
  const m = d.meshes[0];
  const t = model.mtls(m);
  const counts = d.policyCounts.get(mesh) || {};
  const kinds = d.kinds.filter((k) => counts[k.name]);
  const insight = d.insightsByMesh.get(mesh);
  const issued = insight?.mTLS?.issuedBackends || {};
  return h('div', { class: 'grid wide' },
    h('section', { class: 'card' },
      h('h2', {}, 'mTLS'),
      h('dl', { class: 'kv' },
        h('dt', {}, 'State'), h('dd', {}, t.enabled ? `on, ${t.mode}` : 'off: traffic between proxies is not encrypted'),
        t.enabled ? [h('dt', {}, 'CA backend'), h('dd', {}, `${t.backend} (${t.type || 'builtin'})`)] : null,
        Object.keys(issued).length ? [h('dt', {}, 'Certificates'), h('dd', {},
          Object.entries(issued).map(([b, s]) => `${b}: ${s.total ?? 0} proxies`).join(', '))] : null),
      h('div', { class: 'links' }, h('a', { href: href('meshes', mesh, 'map') }, 'Service map →'))),
    h('section', { class: 'card' },
      h('h2', {}, 'Policies'),
      kinds.length
        ? h('ul', { class: 'chips', 'aria-label': 'Policy kinds in use' }, kinds.map((k) =>
          h('li', {}, h('a', { class: 'chip', href: href('meshes', mesh, 'policies', k.path) }, `${k.name} · ${counts[k.name]}`))))
        : h('p', { class: 'muted' }, 'No policies in this mesh.'),
      h('div', { class: 'links' }, h('a', { href: href('meshes', mesh, 'policies') }, 'All policy kinds →'))));
}

export function serviceTable(services, showMesh) {
  return table([
    { label: 'Service', cell: (s) => link(s.name, 'meshes', s.mesh, 'services', s.name) },
    showMesh ? { label: 'Mesh', cell: (s) => link(s.mesh, 'meshes', s.mesh) } : null,
    { label: 'Protocol', cell: (s) => s.protocol },
    { label: 'Dataplanes', cell: (s) => `${s.online} online / ${s.total}` },
    { label: 'Status', cell: (s) => serviceBadge(s) },
  ].filter(Boolean), services, { empty: 'No service has a dataplane yet.' });
}

export function serviceBadge(s) {
  if (!s.total) return badge('No proxies', 'neutral');
  if (s.offline === 0) return badge('Online', 'ok');
  if (s.online === 0) return badge('Offline', 'bad');
  return badge('Partially online', 'warn');
}

/** zonesStat counts the zone control planes of a global control plane (none elsewhere). */
function zonesStat(g) {
  const z = g?.zones?.controlPlanes;
  if (!z?.total) return null;
  return stat('Zones', z.total, h('a', { href: '#/zones' }, `${z.online} online · ${z.total - z.online} offline`), onlineBar(z.online, z.total - z.online));
}
