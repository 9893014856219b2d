// What the GUI derives from API objects: dataplane status, services,
// versions, mTLS state, and the policy kinds /_resources lists.
import * as api from './api.js';

export const SERVICE_TAG = 'kuma.io/service';
export const PROTOCOL_TAG = 'kuma.io/protocol';

let kindsPromise = null;

/** policyKinds lists the policy descriptors of /_resources, sorted by name. */
export function policyKinds() {
  kindsPromise ??= api.get(api.paths.resources()).then((r) =>
    (r.resources || []).filter((d) => d.policy && d.scope === 'Mesh').sort((a, b) => a.name.localeCompare(b.name)),
  ).catch((err) => { kindsPromise = null; throw err; });
  return kindsPromise;
}

/** kindByName finds a policy descriptor by kind (MeshTimeout) or path (meshtimeouts). */
export async function kindBy(key) {
  const kinds = await policyKinds();
  return kinds.find((k) => k.name === key || k.path === key) || null;
}

/** lastSubscription returns the newest xDS subscription of an overview. */
export function lastSubscription(ov) {
  const subs = ov?.dataplaneInsight?.subscriptions || [];
  return subs.length ? subs[subs.length - 1] : null;
}

/** status is online, offline or degraded (online with an unready inbound). */
export function status(ov) {
  const last = lastSubscription(ov);
  const online = !!last && !last.disconnectTime && !!last.connectTime;
  if (!online) return 'offline';
  const inbounds = ov.dataplane?.networking?.inbound || [];
  if (inbounds.some((i) => i.health && i.health.ready === false)) return 'degraded';
  return 'online';
}

/** services are the kuma.io/service values of a dataplane's inbounds (or gateway). */
export function services(dp) {
  const net = dp?.networking || {};
  const out = new Set();
  for (const i of net.inbound || []) if (i.tags?.[SERVICE_TAG]) out.add(i.tags[SERVICE_TAG]);
  if (net.gateway?.tags?.[SERVICE_TAG]) out.add(net.gateway.tags[SERVICE_TAG]);
  return [...out].sort();
}

/** tags merges the tags of a dataplane's inbounds and gateway: key -> sorted values. */
export function tags(dp) {
  const net = dp?.networking || {};
  const all = {};
  const add = (t) => {
    for (const [k, v] of Object.entries(t || {})) (all[k] ??= new Set()).add(v);
  };
  (net.inbound || []).forEach((i) => add(i.tags));
  if (net.gateway) add(net.gateway.tags);
  return Object.fromEntries(Object.entries(all).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, [...v].sort()]));
}

/** flatTags is tags() with values joined, for chips. */
export function flatTags(dp) {
  return Object.fromEntries(Object.entries(tags(dp)).map(([k, v]) => [k, v.join(', ')]));
}

/** version names the proxy build of the newest subscription. */
export function version(ov) {
  const v = lastSubscription(ov)?.version;
  if (!v) return '';
  const parts = [];
  for (const [k, val] of Object.entries(v)) {
    const text = typeof val === 'string' ? val : val?.version;
    if (text) parts.push(`${k} ${text}`);
  }
  return parts.join(', ');
}

export function address(dp) {
  const net = dp?.networking || {};
  return net.advertisedAddress && net.advertisedAddress !== net.address ? `${net.address} (${net.advertisedAddress})` : net.address || '';
}

/** mtls describes a Mesh's mTLS: {enabled, backend, type, mode}. */
export function mtls(mesh) {
  const m = mesh?.mtls;
  if (!m?.enabledBackend) return { enabled: false };
  const b = (m.backends || []).find((x) => x.name === m.enabledBackend) || {};
  return { enabled: true, backend: m.enabledBackend, type: b.type || '', mode: b.mode || 'STRICT' };
}

/** countStatus counts overviews: {total, online, offline, degraded}. */
export function countStatus(overviews) {
  const c = { total: 0, online: 0, offline: 0, degraded: 0 };
  for (const ov of overviews) {
    c.total++;
    c[status(ov)]++;
  }
  return c;
}

/**
 * serviceStats groups overviews by mesh and service:
 * [{mesh, name, total, online, offline, protocol, dataplanes: [names]}], sorted.
 */
export function serviceStats(overviews) {
  const by = new Map();
  for (const ov of overviews) {
    const st = status(ov);
    for (const inb of serviceInbounds(ov.dataplane)) {
      const key = `${ov.mesh}\u0000${inb.service}`;
      let e = by.get(key);
      if (!e) {
        e = { mesh: ov.mesh, name: inb.service, total: 0, online: 0, offline: 0, protocol: new Set(), dataplanes: new Set() };
        by.set(key, e);
      }
      if (inb.protocol) e.protocol.add(inb.protocol);
      if (e.dataplanes.has(ov.name)) continue;
      e.dataplanes.add(ov.name);
      e.total++;
      if (st === 'offline') e.offline++;
      else e.online++;
    }
  }
  return [...by.values()]
    .map((e) => ({ ...e, protocol: [...e.protocol].sort().join(', ') || 'tcp', dataplanes: [...e.dataplanes].sort() }))
    .sort((a, b) => a.mesh.localeCompare(b.mesh) || a.name.localeCompare(b.name));
}

function serviceInbounds(dp) {
  const net = dp?.networking || {};
  const out = [];
  for (const i of net.inbound || []) {
    if (i.tags?.[SERVICE_TAG]) out.push({ service: i.tags[SERVICE_TAG], protocol: i.tags[PROTOCOL_TAG] });
  }
  if (net.gateway?.tags?.[SERVICE_TAG]) out.push({ service: net.gateway.tags[SERVICE_TAG], protocol: 'gateway' });
  return out;
}

/** targetRefText summarises a targetRef: "MeshService backend", "Mesh". */
export function targetRefText(ref) {
  if (!ref) return 'Mesh';
  const parts = [ref.kind];
  if (ref.name) parts.push(ref.name);
  const t = ref.tags || ref.labels;
  if (t && Object.keys(t).length) parts.push(Object.entries(t).map(([k, v]) => `${k}=${v}`).join(','));
  if (ref.sectionName) parts.push(`[${ref.sectionName}]`);
  return parts.join(' ');
}

/**
 * policyTargets tells how a policy refers to a service: a list of
 * "targetRef", "to" or "from" for each section naming it.
 */
export function policyTargets(policy, service) {
  const spec = policy.spec || {};
  const names = (ref) => ref && (((ref.kind === 'MeshService' || ref.kind === 'MeshServiceSubset') && ref.name === service)
    || ((ref.kind === 'MeshSubset' || ref.kind === 'MeshServiceSubset') && ref.tags?.[SERVICE_TAG] === service));
  const where = [];
  if (names(spec.targetRef)) where.push('targetRef');
  if ((spec.to || []).some((t) => names(t.targetRef))) where.push('to');
  if ((spec.from || []).some((t) => names(t.targetRef))) where.push('from');
  if ((spec.rules || []).some((r) => (r.matches || []).some((m) => (m.spiffeId?.value || '').endsWith(`/${service}`)))) where.push('rules');
  return where;
}

export const ZONE_TAG = 'kuma.io/zone';

/** zone is a dataplane overview's zone: its kuma.io/zone label, else the tag; '' when none. */
export function zone(ov) {
  return ov?.labels?.[ZONE_TAG] || tags(ov?.dataplane)[ZONE_TAG]?.[0] || '';
}

/** lastKDS returns the newest KDS subscription of a ZoneOverview. */
export function lastKDS(zov) {
  const subs = zov?.zoneInsight?.subscriptions || [];
  return subs.length ? subs[subs.length - 1] : null;
}

/** zoneStatus is online (its newest KDS stream is open), offline or disabled. */
export function zoneStatus(zov) {
  if (zov?.zone?.enabled === false) return 'disabled';
  const last = lastKDS(zov);
  return last && !last.disconnectTime ? 'online' : 'offline';
}
