// Dataplanes of one mesh or of all: searchable by name and tag, filterable
// by status, service, zone and tag key=value; refreshed while shown. The
// Zone column and filter show when some dataplane has a zone (multi-zone).
import * as api from './api.js';
import * as model from './model.js';
import { zoneLink } from './view-zones.js';
import { h, link, table, fillRows, sortable, pageHead, statusBadge, tagChips, searchInput, select, liveNote, timeEl } from './dom.js';

const REFRESH_MS = 10000;

export async function dataplanesView(ctx) {
  const mesh = ctx.params.mesh || '';
  ctx.title(mesh ? `Dataplanes of ${mesh}` : 'Dataplanes');
  let overviews = await api.list(api.paths.overviews(mesh), { signal: ctx.signal });
  const f = {
    q: ctx.query.get('q') || '',
    status: ctx.query.get('status') || '',
    service: ctx.query.get('service') || '',
    tag: ctx.query.get('tag') || '',
    zone: ctx.query.get('zone') || '',
  };
  const zoned = () => f.zone !== '' || overviews.some((o) => model.zone(o));
  const columns = [
    { label: 'Name', cell: (o) => link(o.name, 'meshes', o.mesh, 'dataplanes', o.name), sort: (o) => o.name },
    mesh ? null : { label: 'Mesh', cell: (o) => link(o.mesh, 'meshes', o.mesh), sort: (o) => `${o.mesh}/${o.name}` },
    { label: 'Status', cell: (o) => statusBadge(model.status(o)), sort: (o) => `${model.status(o)}/${o.name}` },
    zoned() ? { label: 'Zone', cell: (o) => zoneLink(model.zone(o)), sort: (o) => `${model.zone(o)}/${o.name}` } : null,
    { label: 'Services', cell: (o) => serviceLinks(o), sort: (o) => model.services(o.dataplane).join(',') },
    { label: 'Tags', cell: (o) => tagChips(model.flatTags(o.dataplane), [model.SERVICE_TAG]) },
    { label: 'Address', cell: (o) => h('span', { class: 'mono' }, model.address(o.dataplane) || '—') },
    { label: 'Version', cell: (o) => model.version(o) || h('span', { class: 'muted' }, '—'), sort: (o) => model.version(o) },
    { label: 'Connected', cell: (o) => connected(o), sort: (o) => Date.parse(model.lastSubscription(o)?.connectTime || 0) || 0 },
  ].filter(Boolean);

  const tableEl = table(columns, [], { caption: 'Dataplanes' });
  const body = tableEl.querySelector('tbody');
  const count = h('span', { class: 'count', 'aria-live': 'polite' });
  const serviceSlot = h('span');
  const zoneSlot = h('span');
  const order = { key: ctx.query.get('sort') || 'Name', dir: ctx.query.get('desc') ? -1 : 1 };
  const sorted = sortable(tableEl, columns, order, () => update());
  const update = () => {
    const rows = sorted(overviews.filter((o) => matches(o, f)));
    f.sort = order.key === 'Name' ? '' : order.key;
    f.desc = order.dir < 0 ? '1' : '';
    fillRows(body, columns, rows, overviews.length ? 'No dataplane matches these filters.' : 'No dataplane yet.');
    count.textContent = `${rows.length} of ${overviews.length}`;
    ctx.setQuery(f);
  };
  const serviceFilter = () => {
    const names = [...new Set(overviews.flatMap((o) => model.services(o.dataplane)))].sort();
    serviceSlot.replaceChildren(select('Service', [['', 'Any'], ...names.map((n) => [n, n])], f.service, (v) => { f.service = v; update(); }));
  };
  const zoneFilter = () => {
    const names = [...new Set(overviews.map((o) => model.zone(o)).filter(Boolean))].sort();
    if (f.zone && !names.includes(f.zone)) names.push(f.zone);
    zoneSlot.replaceChildren(names.length ? select('Zone', [['', 'Any'], ...names.map((n) => [n, n])], f.zone, (v) => { f.zone = v; update(); }) : '');
  };
  serviceFilter();
  zoneFilter();
  update();
  ctx.every(REFRESH_MS, async () => {
    overviews = await api.list(api.paths.overviews(mesh), { signal: ctx.signal });
    zoneFilter();
    update();
  });

  return h('div', {},
    pageHead(mesh ? 'Dataplanes' : 'Dataplanes in all meshes', {
      crumbs: mesh ? [link('Overview'), link(mesh, 'meshes', mesh)] : [link('Overview')],
      sub: [liveNote('Live · refreshed every 10 s')],
    }),
    h('div', { class: 'toolbar', role: 'search' },
      searchInput('Search name or tag', f.q, (v) => { f.q = v; update(); }),
      select('Status', [['', 'Any'], ['online', 'Online'], ['offline', 'Offline']], f.status, (v) => { f.status = v; update(); }),
      serviceSlot,
      zoneSlot,
      h('label', {}, 'Tag', h('input', {
        type: 'text', placeholder: 'key=value', value: f.tag, 'aria-label': 'Tag key=value', size: 16,
        oninput: (e) => { f.tag = e.target.value.trim(); update(); },
      })),
      count),
    tableEl);
}

function serviceLinks(o) {
  const svcs = model.services(o.dataplane);
  if (!svcs.length) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'chips' }, svcs.map((s) => h('a', { class: 'chip', href: `#/meshes/${encodeURIComponent(o.mesh)}/services/${encodeURIComponent(s)}` }, s)));
}

function connected(o) {
  const last = model.lastSubscription(o);
  if (!last) return h('span', { class: 'muted' }, 'never');
  return last.disconnectTime ? ['disconnected ', timeEl(last.disconnectTime)] : timeEl(last.connectTime);
}

/** matches applies the list's filters to one overview. */
export function matches(o, f) {
  const st = model.status(o);
  if (f.status === 'online' && st === 'offline') return false;
  if (f.status === 'offline' && st !== 'offline') return false;
  const tags = model.tags(o.dataplane);
  if (f.service && !(tags[model.SERVICE_TAG] || []).includes(f.service)) return false;
  if (f.zone && model.zone(o) !== f.zone) return false;
  if (f.tag) {
    const [k, v] = f.tag.split('=');
    const vals = tags[k.trim()];
    if (!vals) return false;
    if (v !== undefined && v.trim() !== '' && !vals.includes(v.trim())) return false;
  }
  if (f.q) {
    const q = f.q.toLowerCase();
    const hay = [o.name, o.mesh, model.address(o.dataplane), ...Object.entries(tags).flatMap(([k, vs]) => vs.map((x) => `${k}=${x}`))];
    if (!hay.some((x) => x.toLowerCase().includes(q))) return false;
  }
  return true;
}
