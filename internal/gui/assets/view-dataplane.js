// A dataplane: status, certificate, tags, inbounds, outbounds, the
// policies that match it (GET .../_rules) and its generated config.
import * as api from './api.js';
import * as model from './model.js';
import { h, href, link, badge, table, pageHead, statusBadge, tagChips, kv, timeEl, fmtTime, swap, liveNote, errorBox } from './dom.js';
import { toYAML } from './yaml.js';
import { configViewer } from './config-viewer.js';
import { zoneLink } from './view-zones.js';

const REFRESH_MS = 5000;

export async function dataplaneView(ctx) {
  const { mesh, name } = ctx.params;
  ctx.title(`${name} (${mesh})`);
  const opts = { signal: ctx.signal };
  const [ov, meshRes, rules, kinds] = await Promise.all([
    api.get(api.paths.overview(mesh, name), opts),
    api.optional(api.paths.mesh(mesh), opts),
    api.get(api.paths.rules(mesh, name), opts).catch((err) => (err.name === 'AbortError' ? Promise.reject(err) : err)),
    model.policyKinds(),
  ]);
  const top = h('div');
  const renderTop = (o) => swap(top, h('div', {}, head(o), statusCards(o, meshRes)));
  renderTop(ov);
  ctx.every(REFRESH_MS, async () => renderTop(await api.get(api.paths.overview(mesh, name), opts)));
  const dp = ov.dataplane || {};
  return h('div', {},
    top,
    h('section', { class: 'section' }, h('h2', {}, 'Inbounds'), inboundTable(dp)),
    h('section', { class: 'section' }, h('h2', {}, 'Outbounds'), outboundTable(dp, mesh)),
    h('section', { class: 'section', 'aria-labelledby': 'matched-policies' },
      h('div', { class: 'section-head' }, h('h2', { id: 'matched-policies' }, 'Matched policies'),
        h('a', { class: 'small', href: api.paths.rules(mesh, name) }, 'Raw JSON')),
      rules instanceof Error ? errorBox(rules) : matchedPolicies(rules, kinds, mesh)),
    h('section', { class: 'section' },
      configViewer('Generated configuration (xDS)', () => api.get(api.paths.config(mesh, name), opts), api.paths.config(mesh, name))));
}

function head(o) {
  const svcs = model.services(o.dataplane);
  return pageHead(o.name, {
    crumbs: [link('Overview'), link(o.mesh, 'meshes', o.mesh), link('Dataplanes', 'meshes', o.mesh, 'dataplanes')],
    sub: [statusBadge(model.status(o)),
      ...svcs.map((s) => h('a', { class: 'chip', href: href('meshes', o.mesh, 'services', s) }, s)),
      liveNote('Live · refreshed every 5 s')],
  });
}

function statusCards(o, meshRes) {
  const last = model.lastSubscription(o);
  const st = last?.status || {};
  const nack = st.lastNack;
  const subs = o.dataplaneInsight?.subscriptions || [];
  return h('div', { class: 'grid wide' },
    h('section', { class: 'card' }, h('h2', {}, 'Connection'),
      kv([
        ['Status', statusBadge(model.status(o))],
        last ? (last.disconnectTime ? ['Disconnected', timeEl(last.disconnectTime)] : ['Connected', timeEl(last.connectTime)]) : ['Connected', 'never'],
        ['Control plane', last?.controlPlaneInstanceId ? h('span', { class: 'mono' }, last.controlPlaneInstanceId) : '—'],
        ['Last ACK', st.lastAckedVersion ? h('span', { class: 'mono' }, st.lastAckedVersion) : '—'],
        ['Last update', timeEl(st.lastUpdateTime)],
        ['Responses', st.total ? `${st.total.responsesSent ?? 0} sent · ${st.total.responsesAcknowledged ?? 0} ACKed · ${st.total.responsesRejected ?? 0} NACKed` : '—'],
        ['Last NACK', nack ? h('span', {}, badge('NACK', 'bad'), ' ', timeEl(nack.time), h('br'), h('code', { class: 'small' }, nack.error || '')) : 'none'],
        ['xDS streams', `${subs.length} remembered`],
      ])),
    h('section', { class: 'card' }, h('h2', {}, 'Proxy'),
      kv([
        ['Address', h('span', { class: 'mono' }, model.address(o.dataplane) || '—')],
        ['Version', model.version(o) || '—'],
        model.zone(o) ? ['Zone', zoneLink(model.zone(o))] : null,
        ['Tags', tagChips(model.flatTags(o.dataplane))],
        o.dataplane?.networking?.gateway ? ['Gateway', `${o.dataplane.networking.gateway.type || 'DELEGATED'} gateway`] : null,
        ['Created', fmtTime(o.creationTime)],
      ])),
    certificateCard(o, meshRes));
}

function certificateCard(o, meshRes) {
  const t = model.mtls(meshRes);
  const m = o.dataplaneInsight?.mTLS;
  const rows = [];
  if (m) {
    const exp = m.certificateExpirationTime;
    const left = exp ? new Date(exp).getTime() - Date.now() : NaN;
    const kind = Number.isNaN(left) ? 'neutral' : left <= 0 ? 'bad' : left < 3600e3 ? 'warn' : 'ok';
    rows.push(['Expires', exp ? h('span', {}, badge(left <= 0 ? 'Expired' : 'Valid', kind), ' ', timeEl(exp)) : '—']);
    rows.push(['Expiry time', fmtTime(exp)]);
    rows.push(['Last rotation', timeEl(m.lastCertificateRegeneration)]);
    rows.push(['Rotations', String(m.certificateRegenerations ?? 0)]);
    rows.push(['Issued by', m.issuedBackend || '—']);
  } else {
    rows.push(['Certificate', t.enabled ? 'not reported by the control plane yet' : 'none: mTLS is off in this mesh']);
  }
  rows.push(['Mesh mTLS', t.enabled ? `${t.backend} (${t.mode})` : 'off']);
  return h('section', { class: 'card' }, h('h2', {}, 'Certificate'), kv(rows));
}

function inboundTable(dp) {
  const net = dp.networking || {};
  const rows = (net.inbound || []).map((i, idx) => ({ ...i, idx }));
  return table([
    { label: 'Service', cell: (i) => i.tags?.[model.SERVICE_TAG] || '—' },
    { label: 'Listener', cell: (i) => h('span', { class: 'mono' }, `${i.address || net.address || ''}:${i.port}`) },
    { label: 'App', cell: (i) => h('span', { class: 'mono' }, `${i.serviceAddress || i.address || net.address || ''}:${i.servicePort || i.port}`) },
    { label: 'Protocol', cell: (i) => i.tags?.[model.PROTOCOL_TAG] || 'tcp' },
    { label: 'Tags', cell: (i) => tagChips(i.tags, [model.SERVICE_TAG, model.PROTOCOL_TAG]) },
    { label: 'Health', cell: (i) => (i.health ? (i.health.ready ? badge('Ready', 'ok') : badge('Not ready', 'bad')) : h('span', { class: 'muted' }, '—')) },
  ], rows, { empty: net.gateway ? 'None: this proxy is a gateway.' : 'No inbound: this proxy only sends traffic.' });
}

function outboundTable(dp, mesh) {
  const net = dp.networking || {};
  return table([
    { label: 'Service', cell: (o) => {
      const s = o.tags?.[model.SERVICE_TAG] || o.backendRef?.name;
      return s ? link(s, 'meshes', mesh, 'services', s) : '—';
    } },
    { label: 'Listener', cell: (o) => h('span', { class: 'mono' }, `${o.address || '127.0.0.1'}:${o.port}`) },
    { label: 'Tags', cell: (o) => tagChips(o.tags, [model.SERVICE_TAG]) },
  ], net.outbound || [], { empty: 'No outbound listed in the Dataplane.' });
}

function yamlBlock(conf) {
  if (conf === null || conf === undefined) return null;
  return h('pre', { class: 'code small' }, toYAML(conf).trimEnd());
}

function subsetText(subset) {
  const e = Object.entries(subset || {});
  if (!e.length) return 'every client';
  return e.map(([k, v]) => `${k}=${v}`).join(', ');
}

function principalText(p) {
  if (!p) return '?';
  if (p.any) return 'any client';
  if (p.exact) return p.exact;
  if (p.prefix) return `${p.prefix}*`;
  return JSON.stringify(p);
}

function policyChips(refs, kind, mesh) {
  return h('span', { class: 'chips' }, (refs || []).map((r) => {
    const name = typeof r === 'string' ? r : r.name;
    return kind ? h('a', { class: 'chip', href: href('meshes', mesh, 'policies', kind.path, name) }, name) : h('span', { class: 'chip' }, name);
  }));
}

/** matchedPolicies renders GET .../_rules: one card per kind with policies. */
function matchedPolicies(rules, kinds, mesh) {
  const used = (rules.rules || []).filter((k) => (k.policies || []).length);
  const unused = (rules.rules || []).filter((k) => !(k.policies || []).length).map((k) => k.type);
  const byName = new Map(kinds.map((k) => [k.name, k]));
  return h('div', {},
    used.length ? h('div', { class: 'grid wide top' }, used.map((k) => kindCard(k, byName.get(k.type), mesh, rules.mtlsEnabled)))
      : h('p', { class: 'empty-state' }, 'No policy selects this dataplane.'),
    unused.length ? h('p', { class: 'muted small' }, `No ${unused.join(', ')} selects it.`) : null);
}

function kindCard(k, kind, mesh, mtlsEnabled) {
  const parts = [];
  if (k.default) {
    parts.push(h('div', { class: 'rule' },
      h('div', { class: 'rule-head' }, h('strong', {}, 'Whole proxy'), policyChips(k.default.origins, kind, mesh)),
      yamlBlock(k.default.conf)));
  }
  for (const inb of k.inbounds || []) {
    const pieces = [];
    for (const r of inb.fromRules || []) {
      pieces.push(h('div', { class: 'rule-head' }, 'from ', h('strong', {}, subsetText(r.subset)), policyChips(r.origins, kind, mesh)), yamlBlock(r.conf));
    }
    for (const r of inb.rules || []) {
      pieces.push(h('div', { class: 'rule-head' }, 'rule ', policyChips([r.policy], kind, mesh), r.matches ? h('code', { class: 'small' }, JSON.stringify(r.matches)) : null), yamlBlock(r.conf));
    }
    for (const p of inb.permissions || []) {
      pieces.push(h('div', { class: 'rule-head' }, badge(p.action, p.action === 'Allow' ? 'ok' : p.action === 'Deny' ? 'bad' : 'warn'),
        h('span', { class: 'mono small' }, principalText(p.principal)), policyChips(p.origins, kind, mesh)));
    }
    if (!pieces.length && !(inb.notes || []).length) continue;
    parts.push(h('div', { class: 'rule' },
      h('div', { class: 'rule-head' }, h('strong', {}, `Inbound :${inb.port}`), h('span', { class: 'muted' }, inb.tags?.[model.SERVICE_TAG] || '')),
      pieces, (inb.notes || []).map((n) => h('p', { class: 'note' }, n))));
  }
  for (const out of k.outbounds || []) {
    if (out.conf === null || out.conf === undefined) continue;
    parts.push(h('div', { class: 'rule' },
      h('div', { class: 'rule-head' }, h('strong', {}, `To ${out.service}`), h('span', { class: 'muted mono small' }, `:${out.port}`), policyChips(out.origins, kind, mesh)),
      yamlBlock(out.conf), (out.notes || []).map((n) => h('p', { class: 'note' }, n))));
  }
  const needsMTLS = (k.type === 'MeshTrafficPermission' || k.type === 'MeshTLS') && !mtlsEnabled;
  return h('article', { class: 'card kind-card', 'data-kind': k.type },
    h('h3', {}, kind ? h('a', { href: href('meshes', mesh, 'policies', kind.path) }, k.type) : k.type, badge(String(k.policies.length), 'neutral', true)),
    h('div', { class: 'rule-head' }, 'Selected by ', policyChips(k.policies, kind, mesh)),
    needsMTLS ? h('p', { class: 'note' }, 'mTLS is off in this mesh: this kind does not apply.') : null,
    parts,
    (k.notes || []).map((n) => h('p', { class: 'note' }, n)));
}
