// Policies: the kinds /_resources lists (with counts), the policies of a
// kind (searchable), and one policy with its YAML and the dataplanes it
// selects.
import * as api from './api.js';
import * as model from './model.js';
import { h, href, link, badge, table, fillRows, pageHead, searchInput, tagChips, timeEl, kv } from './dom.js';
import { toYAML } from './yaml.js';

function crumbs(mesh) {
  return mesh ? [link('Overview'), link(mesh, 'meshes', mesh)] : [link('Overview')];
}

function kindHref(mesh, kind) {
  return mesh ? href('meshes', mesh, 'policies', kind.path) : href('policies', kind.path);
}

function sections(kind) {
  const p = kind.policy || {};
  return [p.hasToTargetRef && 'to', p.hasFromTargetRef && 'from', p.hasRules && 'rules'].filter(Boolean).join(' · ') || 'targetRef';
}

/** kindsView lists every policy kind with how many policies it has. */
export async function kindsView(ctx) {
  const mesh = ctx.params.mesh || '';
  ctx.title(mesh ? `Policies of ${mesh}` : 'Policies');
  const kinds = await model.policyKinds();
  const counts = await Promise.all(kinds.map((k) => api.total(api.paths.policies(mesh, k.path), { signal: ctx.signal }).catch(() => null)));
  const rows = kinds.map((k, i) => ({ kind: k, count: counts[i] }));
  const total = counts.reduce((a, b) => a + (b || 0), 0);
  return h('div', {},
    pageHead(mesh ? 'Policies' : 'Policies in all meshes', { crumbs: crumbs(mesh), sub: [h('span', { class: 'muted' }, `${total} policies of ${kinds.length} kinds`)] }),
    table([
      { label: 'Kind', cell: (r) => h('a', { href: kindHref(mesh, r.kind) }, r.kind.name) },
      { label: 'Policies', num: true, cell: (r) => (r.count === null ? '?' : String(r.count)) },
      { label: 'Sections', cell: (r) => h('span', { class: 'muted' }, sections(r.kind)) },
      { label: 'API path', cell: (r) => h('code', {}, mesh ? `/meshes/${mesh}/${r.kind.path}` : `/${r.kind.path}`) },
    ], rows, { empty: 'The control plane lists no policy kind.' }));
}

function targetSummary(p) {
  const spec = p.spec || {};
  const parts = [h('span', { class: 'chip' }, model.targetRefText(spec.targetRef))];
  for (const [sec, items] of [['to', spec.to], ['from', spec.from]]) {
    for (const it of items || []) parts.push(h('span', { class: 'chip' }, h('b', {}, `${sec} `), model.targetRefText(it.targetRef)));
  }
  if ((spec.rules || []).length) parts.push(h('span', { class: 'chip' }, h('b', {}, 'rules '), String(spec.rules.length)));
  return h('span', { class: 'chips' }, parts);
}

function policyMatches(p, q) {
  if (!q) return true;
  const needle = q.toLowerCase();
  const spec = p.spec || {};
  const hay = [p.name, p.mesh, model.targetRefText(spec.targetRef),
    ...(spec.to || []).map((t) => model.targetRefText(t.targetRef)),
    ...(spec.from || []).map((t) => model.targetRefText(t.targetRef)),
    ...Object.entries(p.labels || {}).map(([k, v]) => `${k}=${v}`)];
  return hay.some((x) => x.toLowerCase().includes(needle));
}

/** policiesView lists the policies of one kind, in a mesh or all. */
export async function policiesView(ctx) {
  const mesh = ctx.params.mesh || '';
  const kind = await model.kindBy(ctx.params.kind);
  if (!kind) throw Object.assign(new Error(`No policy kind is served at "${ctx.params.kind}".`), { title: 'Unknown policy kind' });
  ctx.title(`${kind.name}${mesh ? ` in ${mesh}` : ''}`);
  const items = await api.list(api.paths.policies(mesh, kind.path), { signal: ctx.signal });
  let q = ctx.query.get('q') || '';
  const columns = [
    { label: 'Name', cell: (p) => link(p.name, 'meshes', p.mesh, 'policies', kind.path, p.name) },
    mesh ? null : { label: 'Mesh', cell: (p) => link(p.mesh, 'meshes', p.mesh) },
    { label: 'Targets', cell: (p) => targetSummary(p) },
    { label: 'Origin', cell: (p) => p.labels?.['kuma.io/origin'] || '—' },
    { label: 'Created', cell: (p) => timeEl(p.creationTime) },
  ].filter(Boolean);
  const t = table(columns, [], { caption: kind.name });
  const body = t.querySelector('tbody');
  const count = h('span', { class: 'count', 'aria-live': 'polite' });
  const update = () => {
    const rows = items.filter((p) => policyMatches(p, q));
    fillRows(body, columns, rows, items.length ? 'No policy matches.' : `No ${kind.name} yet.`);
    count.textContent = `${rows.length} of ${items.length}`;
    ctx.setQuery({ q });
  };
  update();
  return h('div', {},
    pageHead(kind.pluralDisplayName || kind.name, {
      crumbs: [...crumbs(mesh), h('a', { href: mesh ? href('meshes', mesh, 'policies') : href('policies') }, 'Policies')],
      sub: [badge(kind.name, 'info', true), h('span', { class: 'muted small' }, sections(kind))],
    }),
    h('div', { class: 'toolbar', role: 'search' }, searchInput('Search name, target or label', q, (v) => { q = v; update(); }), count),
    t);
}

/** policyView shows one policy: its document and the dataplanes it selects. */
export async function policyView(ctx) {
  const { mesh, name } = ctx.params;
  const kind = await model.kindBy(ctx.params.kind);
  if (!kind) throw Object.assign(new Error(`No policy kind is served at "${ctx.params.kind}".`), { title: 'Unknown policy kind' });
  ctx.title(`${kind.name} ${name}`);
  const opts = { signal: ctx.signal };
  const [p, dps] = await Promise.all([
    api.get(api.paths.policy(mesh, kind.path, name), opts),
    api.list(api.paths.policyDataplanes(mesh, kind.path, name), opts).catch((err) => (err.name === 'AbortError' ? Promise.reject(err) : err)),
  ]);
  const yaml = toYAML(p);
  const json = JSON.stringify(p, null, 2);
  const pre = h('pre', { class: 'code', tabindex: '0', 'aria-label': `${kind.name} ${name}` }, yaml);
  const tabs = ['YAML', 'JSON'].map((label) => h('button', {
    type: 'button', role: 'tab', 'aria-selected': label === 'YAML' ? 'true' : 'false',
    onclick: () => {
      pre.textContent = label === 'YAML' ? yaml : json;
      tabs.forEach((b) => b.setAttribute('aria-selected', String(b === tabs[label === 'YAML' ? 0 : 1])));
    },
  }, label));
  const spec = p.spec || {};
  return h('div', {},
    pageHead(name, {
      crumbs: [...crumbs(mesh), link('Policies', 'meshes', mesh, 'policies'), link(kind.name, 'meshes', mesh, 'policies', kind.path)],
      sub: [badge(kind.name, 'info', true), targetSummary(p)],
    }),
    h('div', { class: 'grid wide' },
      h('section', { class: 'card' }, h('h2', {}, 'Summary'), kv([
        ['Kind', kind.name],
        ['Mesh', link(mesh, 'meshes', mesh)],
        ['Applies to', model.targetRefText(spec.targetRef)],
        ['Labels', tagChips(p.labels)],
        ['Created', timeEl(p.creationTime)],
        ['Modified', timeEl(p.modificationTime)],
      ])),
      h('section', { class: 'card', 'aria-labelledby': 'selected-dps' },
        h('h2', { id: 'selected-dps' }, 'Selected dataplanes'),
        dps instanceof Error ? h('p', { class: 'muted' }, `Not available: ${dps.title || dps.message}`)
          : dps.length ? h('ul', { class: 'chips', 'aria-label': 'Dataplanes' }, dps.map((d) => h('li', {}, h('a', { class: 'chip', href: href('meshes', d.mesh, 'dataplanes', d.name) }, d.name))))
            : h('p', { class: 'muted' }, 'No dataplane of the mesh matches its targetRef.'))),
    h('section', { class: 'section' },
      h('div', { class: 'toolbar' }, h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Format' }, tabs),
        h('button', { type: 'button', onclick: (e) => copyText(e.target, pre.textContent) }, 'Copy')),
      pre),
  );
}

async function copyText(btn, text) {
  try { await navigator.clipboard.writeText(text); btn.textContent = 'Copied'; } catch { btn.textContent = 'Copy failed'; }
  setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
}
