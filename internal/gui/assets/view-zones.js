// Zones of a global control plane (GET /zones+insights): each zone control
// plane's KDS connection (online/offline, last sync, version, what was
// synced), and a zone's page with its dataplanes and zone ingresses. A
// standalone or zone control plane says so instead.
import * as api from './api.js';
import * as model from './model.js';
import { h, link, href, badge, table, fillRows, sortable, pageHead, kv, timeEl, fmtTime, searchInput, select, liveNote, swap, statusBadge } from './dom.js';

const REFRESH_MS = 5000;

/** modeNote explains why a non-global control plane has no zones list. */
async function modeNote(ctx) {
  const info = await api.get(api.paths.index(), { signal: ctx.signal }).catch(() => ({}));
  const mode = info.mode || 'standalone';
  if (mode === 'global') return null;
  const text = mode === 'zone'
    ? ['This control plane is the zone control plane of ', h('strong', {}, info.zone || '?'),
      '. Zones are listed by the global control plane it syncs with.']
    : ['This control plane runs ', h('strong', {}, 'standalone'),
      ': it has no zones. Start a global control plane (TRELLIS_MODE=global) and zone control planes to span several zones.'];
  return h('div', { class: 'page-head-wrap' },
    pageHead('Zones', { crumbs: [link('Overview')], sub: [badge(mode, 'info', true)] }),
    h('p', { class: 'card', 'data-mode-note': mode }, text));
}

function zoneBadge(st) {
  if (st === 'disabled') return badge('Disabled', 'warn');
  return statusBadge(st);
}

function kdsTotals(sub) {
  const t = sub?.status?.total;
  if (!t) return h('span', { class: 'muted' }, '—');
  return `${t.responsesSent ?? 0} sent · ${t.responsesAcknowledged ?? 0} ACKed · ${t.responsesRejected ?? 0} NACKed`;
}

function cpVersion(sub) {
  return sub?.version?.kumaCp?.version || '';
}

export async function zonesView(ctx) {
  ctx.title('Zones');
  const note = await modeNote(ctx);
  if (note) return note;
  let zones = await api.list(api.paths.zoneOverviews(), { signal: ctx.signal });
  const f = { q: ctx.query.get('q') || '', status: ctx.query.get('status') || '' };
  const columns = [
    { label: 'Name', cell: (z) => link(z.name, 'zones', z.name), sort: (z) => z.name },
    { label: 'Status', cell: (z) => zoneBadge(model.zoneStatus(z)), sort: (z) => `${model.zoneStatus(z)}/${z.name}` },
    { label: 'Last sync', cell: (z) => timeEl(model.lastKDS(z)?.status?.lastUpdateTime), sort: (z) => Date.parse(model.lastKDS(z)?.status?.lastUpdateTime || 0) || 0 },
    { label: 'Connected', cell: (z) => connected(model.lastKDS(z)), sort: (z) => Date.parse(model.lastKDS(z)?.connectTime || 0) || 0 },
    { label: 'Version', cell: (z) => cpVersion(model.lastKDS(z)) || h('span', { class: 'muted' }, '—'), sort: (z) => cpVersion(model.lastKDS(z)) },
    { label: 'KDS', cell: (z) => kdsTotals(model.lastKDS(z)) },
  ];
  const tableEl = table(columns, [], { caption: 'Zones' });
  const body = tableEl.querySelector('tbody');
  const count = h('span', { class: 'count', 'aria-live': 'polite' });
  const order = { key: 'Name', dir: 1 };
  const sorted = sortable(tableEl, columns, order, () => update());
  const update = () => {
    const rows = sorted(zones.filter((z) => (!f.q || z.name.toLowerCase().includes(f.q.toLowerCase())) &&
      (!f.status || model.zoneStatus(z) === f.status)));
    fillRows(body, columns, rows, zones.length ? 'No zone matches these filters.' : 'No zone has connected yet.');
    const online = zones.filter((z) => model.zoneStatus(z) === 'online').length;
    count.textContent = `${rows.length} of ${zones.length} · ${online} online`;
    ctx.setQuery(f);
  };
  update();
  ctx.every(REFRESH_MS, async () => {
    zones = await api.list(api.paths.zoneOverviews(), { signal: ctx.signal });
    update();
  });
  return h('div', {},
    pageHead('Zones', { crumbs: [link('Overview')], sub: [liveNote('Live · refreshed every 5 s')] }),
    h('div', { class: 'toolbar', role: 'search' },
      searchInput('Search zone', f.q, (v) => { f.q = v; update(); }),
      select('Status', [['', 'Any'], ['online', 'Online'], ['offline', 'Offline'], ['disabled', 'Disabled']], f.status, (v) => { f.status = v; update(); }),
      count),
    tableEl);
}

function connected(sub) {
  if (!sub) return h('span', { class: 'muted' }, 'never');
  return sub.disconnectTime ? ['disconnected ', timeEl(sub.disconnectTime)] : timeEl(sub.connectTime);
}

export async function zoneView(ctx) {
  const { name } = ctx.params;
  ctx.title(`Zone ${name}`);
  const opts = { signal: ctx.signal };
  const [zov, ingresses, dps] = await Promise.all([
    api.get(api.paths.zoneOverview(name), opts),
    api.optional(api.paths.zoneIngresses(), opts).then((l) => l?.items || []),
    api.list(api.paths.zoneDataplanes(name), opts),
  ]);
  const top = h('div');
  const render = (z) => swap(top, h('div', {}, zoneHead(z), zoneCards(z), statTable(model.lastKDS(z)), historyTable(z)));
  render(zov);
  ctx.every(REFRESH_MS, async () => render(await api.get(api.paths.zoneOverview(name), opts)));
  const mine = ingresses.filter((i) => (i.zoneIngress?.zone || i.labels?.[model.ZONE_TAG]) === name);
  return h('div', {},
    top,
    h('section', { class: 'section' },
      h('div', { class: 'section-head' }, h('h2', {}, `Dataplanes (${dps.length})`),
        h('a', { class: 'small', href: `#/dataplanes?zone=${encodeURIComponent(name)}` }, 'In the dataplanes list')),
      table([
        { label: 'Name', cell: (o) => link(o.name, 'meshes', o.mesh, 'dataplanes', o.name) },
        { label: 'Mesh', cell: (o) => link(o.mesh, 'meshes', o.mesh) },
        { label: 'Status', cell: (o) => statusBadge(model.status(o)) },
        { label: 'Services', cell: (o) => model.services(o.dataplane).join(', ') || '—' },
      ], dps, { empty: 'No dataplane of this zone is known to the global control plane.', caption: 'Dataplanes of the zone' })),
    h('section', { class: 'section' }, h('h2', {}, `Zone ingresses (${mine.length})`),
      table([
        { label: 'Name', cell: (i) => h('span', { class: 'mono' }, i.name) },
        { label: 'Status', cell: (i) => statusBadge(ingressStatus(i)) },
        { label: 'Advertised address', cell: (i) => h('span', { class: 'mono' }, advertised(i.zoneIngress)) },
        { label: 'Services', cell: (i) => String((i.zoneIngress?.availableServices || []).length) },
      ], mine, { empty: 'No zone ingress in this zone.', caption: 'Zone ingresses' })));
}

function zoneHead(z) {
  return pageHead(z.name, {
    crumbs: [link('Overview'), link('Zones', 'zones')],
    sub: [zoneBadge(model.zoneStatus(z)), liveNote('Live · refreshed every 5 s')],
  });
}

function zoneCards(z) {
  const sub = model.lastKDS(z);
  const v = sub?.version?.kumaCp || {};
  const subs = z.zoneInsight?.subscriptions || [];
  return h('div', { class: 'grid wide' },
    h('section', { class: 'card' }, h('h2', {}, 'KDS connection'),
      kv([
        ['Status', zoneBadge(model.zoneStatus(z))],
        ['Enabled', z.zone?.enabled === false ? 'no' : 'yes'],
        sub ? (sub.disconnectTime ? ['Disconnected', timeEl(sub.disconnectTime)] : ['Connected', timeEl(sub.connectTime)]) : ['Connected', 'never'],
        ['Last sync', timeEl(sub?.status?.lastUpdateTime)],
        ['Responses', kdsTotals(sub)],
        ['Global instance', sub?.globalInstanceId ? h('span', { class: 'mono' }, sub.globalInstanceId) : '—'],
        ['Zone instance', sub?.zoneInstanceId ? h('span', { class: 'mono' }, sub.zoneInstanceId) : '—'],
        z.zoneInsight?.healthCheck?.time ? ['Last heard', timeEl(z.zoneInsight.healthCheck.time)] : null,
        ['KDS streams', `${subs.length} remembered`],
      ])),
    h('section', { class: 'card' }, h('h2', {}, 'Zone control plane'),
      kv([
        ['Version', v.version || '—'],
        ['Git tag', v.gitTag || '—'],
        ['Git commit', v.gitCommit ? h('span', { class: 'mono' }, v.gitCommit.slice(0, 12)) : '—'],
        ['Build date', v.buildDate || '—'],
        ['Compatible', v.version ? (v.kumaCpGlobalCompatible ? badge('yes', 'ok', true) : badge('no', 'warn', true)) : '—'],
        ['Created', fmtTime(z.creationTime)],
      ])));
}

/** statTable lists the KDS counters per resource kind of a subscription. */
function statTable(sub) {
  const stat = sub?.status?.stat || {};
  const rows = Object.keys(stat).sort().map((k) => ({ kind: k, ...stat[k] }));
  return h('section', { class: 'section' }, h('h2', {}, 'Synced resources (newest stream)'),
    table([
      { label: 'Kind', cell: (r) => r.kind },
      { label: 'Sent', cell: (r) => String(r.responsesSent ?? 0), num: true },
      { label: 'ACKed', cell: (r) => String(r.responsesAcknowledged ?? 0), num: true },
      { label: 'NACKed', cell: (r) => (r.responsesRejected ? badge(String(r.responsesRejected), 'bad', true) : '0'), num: true },
    ], rows, { empty: 'Nothing synced on this stream yet.', caption: 'KDS counters per kind' }));
}

function historyTable(z) {
  const subs = [...(z.zoneInsight?.subscriptions || [])].reverse();
  return h('section', { class: 'section' }, h('h2', {}, 'KDS streams'),
    table([
      { label: 'Stream', cell: (s) => h('span', { class: 'mono small' }, s.id) },
      { label: 'Connected', cell: (s) => timeEl(s.connectTime) },
      { label: 'Disconnected', cell: (s) => (s.disconnectTime ? timeEl(s.disconnectTime) : badge('open', 'ok')) },
      { label: 'Version', cell: (s) => cpVersion(s) || '—' },
      { label: 'Responses', cell: (s) => kdsTotals(s) },
    ], subs, { empty: 'The zone never connected.', caption: 'KDS streams, newest first' }));
}

function ingressStatus(i) {
  const subs = i.zoneIngressInsight?.subscriptions || [];
  const last = subs[subs.length - 1];
  if (!last) return 'unknown'; // the zone reports no insight for it
  return !last.disconnectTime ? 'online' : 'offline';
}

function advertised(zi) {
  const n = zi?.networking || {};
  const addr = n.advertisedAddress || n.address;
  const port = n.advertisedPort || n.port;
  return addr ? `${addr}:${port ?? ''}` : '—';
}

/** zoneLink links a zone's page (used by the dataplane views). */
export function zoneLink(zone) {
  return zone ? h('a', { class: 'chip', href: href('zones', zone) }, zone) : h('span', { class: 'muted' }, '—');
}
