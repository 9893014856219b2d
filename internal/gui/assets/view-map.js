// The live service map of a mesh: GET /meshes/{mesh}/_service-map every
// few seconds, drawn as an SVG graph plus an accessible table of edges.
import * as api from './api.js';
import * as model from './model.js';
import { h, link, badge, table, pageHead, fmtRate, fmtPercent, errorClass, swap, ago } from './dom.js';
import { drawMap, narrow } from './graph.js';

const REFRESH_MS = 3000;

export async function mapView(ctx) {
  let mesh = ctx.params.mesh;
  if (!mesh) {
    const meshes = (await api.list(api.paths.meshes(), { signal: ctx.signal })).map((m) => m.name).sort();
    mesh = meshes.includes('default') ? 'default' : meshes[0];
    if (!mesh) return h('div', {}, pageHead('Service map'), h('p', { class: 'empty-state' }, 'No mesh yet.'));
    location.replace(`#/meshes/${encodeURIComponent(mesh)}/map`);
    return h('p', { class: 'muted' }, 'Loading…');
  }
  ctx.title(`Service map of ${mesh}`);
  const status = h('span', { class: 'muted small', 'data-live': '', 'aria-live': 'off' });
  const slot = h('div');
  const build = async () => {
    const data = await load(mesh, ctx.signal);
    swap(slot, render(mesh, data));
    status.textContent = data.live
      ? `Live · window ${windowText(data.map.window)} · updated ${ago(data.map.updated)}`
      : 'No traffic data: this control plane serves no service map';
  };
  await build();
  ctx.every(REFRESH_MS, build);
  return h('div', {},
    pageHead('Service map', { crumbs: [link('Overview'), link(mesh, 'meshes', mesh)], sub: [status] }),
    h('div', { class: 'legend', 'aria-hidden': 'true' },
      h('span', {}, h('span', { class: 'swatch ok' }), 'errors < 1%'),
      h('span', {}, h('span', { class: 'swatch warn' }), '1–5%'),
      h('span', {}, h('span', { class: 'swatch bad' }), '≥ 5%'),
      h('span', {}, 'Arrows run from callers to the services they call.')),
    slot);
}

function windowText(w) {
  if (w === undefined || w === null || w === '') return '—';
  return typeof w === 'number' ? `${w} s` : String(w);
}

async function load(mesh, signal) {
  const map = await api.optional(api.paths.serviceMap(mesh), { signal });
  if (map) return { live: true, map, services: map.services || [], edges: map.edges || [] };
  // No service map: draw the services the dataplanes declare, without edges.
  const stats = model.serviceStats(await api.list(api.paths.overviews(mesh), { signal }));
  return { live: false, map: null, services: stats.map((x) => ({ name: x.name, dataplanes: { total: x.total, online: x.online, offline: x.offline } })), edges: [] };
}

function render(mesh, data) {
  const { services, edges } = data;
  if (!services.length && !edges.length) {
    return h('p', { class: 'empty-state' }, 'No service in this mesh yet.');
  }
  const sorted = [...edges].sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination));
  const rps = edges.reduce((a, e) => a + (Number(e.requestsPerSecond) || 0), 0);
  const errs = edges.reduce((a, e) => a + (Number(e.requestsPerSecond) || 0) * (Number(e.errorRate) || 0), 0);
  return h('div', {},
    h('p', { class: 'map-summary' },
      h('span', {}, h('b', {}, String(services.length)), ` service${services.length === 1 ? '' : 's'}`),
      h('span', {}, h('b', {}, String(edges.length)), ` edge${edges.length === 1 ? '' : 's'}`),
      data.live ? h('span', {}, h('b', {}, fmtRate(rps)), ' in total') : null,
      data.live ? h('span', {}, h('b', {}, fmtPercent(rps ? errs / rps : 0)), ' errors') : null),
    h('div', { class: 'map-wrap' }, drawMap(mesh, services, edges, { vertical: narrow() })),
    h('section', { class: 'section' },
      h('h2', {}, 'Edges'),
      table([
        { label: 'From', cell: (e) => link(e.source, 'meshes', mesh, 'services', e.source) },
        { label: 'To', cell: (e) => link(e.destination, 'meshes', mesh, 'services', e.destination) },
        { label: 'Rate', num: true, cell: (e) => fmtRate(e.requestsPerSecond) },
        { label: 'Errors', num: true, cell: (e) => badge(fmtPercent(e.errorRate), errorClass(e.errorRate), true) },
        { label: 'Requests', num: true, cell: (e) => String(e.requests ?? 0) },
      ], sorted, { empty: data.live ? 'No traffic between services in the last window.' : 'Traffic data needs the control plane\'s service map (GET /meshes/{mesh}/_service-map).' })));
}
