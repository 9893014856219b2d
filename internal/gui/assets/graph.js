// The service map as an SVG: services laid out in layers by call depth
// (callers left, callees right), deterministic for the same input, with
// edges labelled by request rate and error rate.
import { s, href, fmtRate, fmtPercent, errorClass } from './dom.js';

const NODE_W = 176;
const NODE_H = 58;
const COL_GAP = 140;
const ROW_GAP = 34;
const PAD = 30;

/** layout places nodes: returns {pos: Map(name -> {x, y, layer}), width, height}. */
export function layout(names, edges) {
  const sorted = [...new Set(names)].sort();
  const out = new Map(sorted.map((n) => [n, []]));
  for (const e of edges) if (e.source !== e.destination) out.get(e.source)?.push(e.destination);
  for (const list of out.values()) list.sort();
  // Drop back edges (depth-first, in name order) so layers are a DAG.
  const stateOf = new Map();
  const forward = new Map(sorted.map((n) => [n, []]));
  const visit = (n) => {
    stateOf.set(n, 1);
    for (const m of out.get(n) || []) {
      const st = stateOf.get(m);
      if (st === 1) continue; // back edge
      forward.get(n).push(m);
      if (!st) visit(m);
    }
    stateOf.set(n, 2);
  };
  const hasIncoming = new Set(edges.filter((e) => e.source !== e.destination).map((e) => e.destination));
  sorted.filter((n) => !hasIncoming.has(n)).forEach((n) => stateOf.get(n) || visit(n));
  sorted.forEach((n) => stateOf.get(n) || visit(n));
  // Longest path from the roots.
  const layer = new Map(sorted.map((n) => [n, 0]));
  for (let changed = true, guard = 0; changed && guard <= sorted.length; guard++) {
    changed = false;
    for (const n of sorted) {
      for (const m of forward.get(n)) {
        if (layer.get(m) < layer.get(n) + 1) { layer.set(m, layer.get(n) + 1); changed = true; }
      }
    }
  }
  const layers = [];
  for (const n of sorted) (layers[layer.get(n)] ??= []).push(n);
  // Order each layer by the mean row of its callers (then by name).
  const row = new Map();
  layers.forEach((col, li) => {
    if (li > 0) {
      const bary = (n) => {
        const preds = sorted.filter((p) => forward.get(p).includes(n) && row.has(p));
        return preds.length ? preds.reduce((a, p) => a + row.get(p), 0) / preds.length : Infinity;
      };
      col.sort((a, b) => bary(a) - bary(b) || a.localeCompare(b));
    }
    col.forEach((n, i) => row.set(n, i));
  });
  const maxRows = Math.max(1, ...layers.map((c) => c.length));
  const height = PAD * 2 + maxRows * NODE_H + (maxRows - 1) * ROW_GAP;
  const width = PAD * 2 + layers.length * NODE_W + Math.max(0, layers.length - 1) * COL_GAP;
  const pos = new Map();
  layers.forEach((col, li) => {
    const colH = col.length * NODE_H + (col.length - 1) * ROW_GAP;
    const top = (height - colH) / 2;
    col.forEach((n, i) => pos.set(n, { x: PAD + li * (NODE_W + COL_GAP), y: top + i * (NODE_H + ROW_GAP), layer: li }));
  });
  return { pos, width: Math.max(width, NODE_W + PAD * 2), height: Math.max(height, NODE_H + PAD * 2) };
}

function edgeClass(e) {
  if (!(Number(e.requestsPerSecond) > 0)) return 'idle';
  return errorClass(e.errorRate);
}

function nodeClass(n) {
  const d = n.dataplanes || {};
  if (!d.total) return '';
  if (!d.online) return 'bad';
  if (d.offline) return 'warn';
  return 'ok';
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** bezierAt returns the point at t of a cubic Bézier curve. */
function bezierAt(p0, p1, p2, p3, t) {
  const u = 1 - t;
  const f = (a, b, c, d) => u * u * u * a + 3 * u * u * t * b + 3 * u * t * t * c + t * t * t * d;
  return { x: f(p0.x, p1.x, p2.x, p3.x), y: f(p0.y, p1.y, p2.y, p3.y) };
}

/**
 * edgePath returns the SVG path of an edge and where its label goes. ends
 * gives the y offsets (0..1 of the node height) where it leaves a and
 * reaches b, so that edges sharing a node do not share an end.
 */
function edgePath(a, b, self, ends) {
  if (self) {
    const x = a.x + NODE_W;
    const y = a.y + NODE_H;
    return { d: `M${x - 40},${y} C${x - 40},${y + 38} ${x + 34},${y + 30} ${x + 2},${y - 12}`, lx: x + 4, ly: y + 40 };
  }
  if (b.layer > a.layer) {
    const p0 = { x: a.x + NODE_W, y: a.y + NODE_H * ends.out };
    const p3 = { x: b.x - 4, y: b.y + NODE_H * ends.in };
    const dx = Math.min(COL_GAP, (p3.x - p0.x) / 2);
    const p1 = { x: p0.x + dx, y: p0.y };
    const p2 = { x: p3.x - dx, y: p3.y };
    // The label sits in the gap just before the target, where no node is.
    const wantX = p3.x - COL_GAP / 2;
    let lo = 0;
    let hi = 1;
    for (let i = 0; i < 30; i++) {
      const mid = (lo + hi) / 2;
      if (bezierAt(p0, p1, p2, p3, mid).x < wantX) lo = mid; else hi = mid;
    }
    const at = bezierAt(p0, p1, p2, p3, lo);
    return { d: `M${p0.x},${p0.y} C${p1.x},${p1.y} ${p2.x},${p2.y} ${p3.x},${p3.y}`, lx: at.x, ly: at.y - 7 };
  }
  if (b.layer < a.layer) {
    // Backwards: from the caller's left side to the callee's right side.
    const p0 = { x: a.x, y: a.y + NODE_H * 0.85 };
    const p3 = { x: b.x + NODE_W + 4, y: b.y + NODE_H * 0.85 };
    const dx = Math.min(COL_GAP, (p0.x - p3.x) / 2);
    const p1 = { x: p0.x - dx, y: p0.y };
    const p2 = { x: p3.x + dx, y: p3.y };
    const at = bezierAt(p0, p1, p2, p3, 0.5);
    return { d: `M${p0.x},${p0.y} C${p1.x},${p1.y} ${p2.x},${p2.y} ${p3.x},${p3.y}`, lx: at.x, ly: at.y + 16 };
  }
  // Same layer: an arc on the right of the column.
  const p0 = { x: a.x + NODE_W, y: a.y + NODE_H * 0.8 };
  const p3 = { x: b.x + NODE_W + 4, y: b.y + NODE_H * 0.2 };
  const bulge = 40 + Math.abs(p3.y - p0.y) / 4;
  return { d: `M${p0.x},${p0.y} C${p0.x + bulge},${p0.y} ${p3.x + bulge},${p3.y} ${p3.x},${p3.y}`, lx: p0.x + bulge * 0.75 + 6, ly: (p0.y + p3.y) / 2, anchor: 'start' };
}

/**
 * placeLabel moves a label (p.lx, p.ly) down, then up, in small steps
 * until its box overlaps no node and no label placed before it.
 */
function placeLabel(placed, p, text) {
  const w = text.length * 6.6 + 6;
  const box = (y) => {
    const x0 = p.anchor === 'start' ? p.lx : p.lx - w / 2;
    return { x0, x1: x0 + w, y0: y - 12, y1: y + 3 };
  };
  const hits = (b) => placed.some((o) => b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1);
  const base = p.ly;
  for (let i = 0; i < 12; i++) {
    const y = base + (i % 2 ? -1 : 1) * Math.ceil(i / 2) * 15;
    if (!hits(box(y))) {
      p.ly = y;
      break;
    }
  }
  placed.push(box(p.ly));
}

/** edgeEnds spreads the forward edges of each node over its side. */
function edgeEnds(edges, pos) {
  const outs = new Map();
  const ins = new Map();
  for (const e of edges) {
    const a = pos.get(e.source);
    const b = pos.get(e.destination);
    if (e.source === e.destination || b.layer <= a.layer) continue;
    (outs.get(e.source) ?? outs.set(e.source, []).get(e.source)).push(e);
    (ins.get(e.destination) ?? ins.set(e.destination, []).get(e.destination)).push(e);
  }
  const ends = new Map();
  const spread = (groups, key, other) => {
    for (const list of groups.values()) {
      list.sort((x, y) => pos.get(x[other]).y - pos.get(y[other]).y || x[other].localeCompare(y[other]));
      list.forEach((e, i) => {
        const k = `${e.source}\u0000${e.destination}`;
        (ends.get(k) ?? ends.set(k, { out: 0.5, in: 0.5 }).get(k))[key] = (i + 1) / (list.length + 1);
      });
    }
  };
  spread(outs, 'out', 'destination');
  spread(ins, 'in', 'source');
  return ends;
}

/**
 * drawMap renders services [{name, dataplanes}] and edges into an <svg>.
 * Nodes link to the service pages of mesh.
 */
export function drawMap(mesh, services, edges) {
  const names = [...services.map((x) => x.name), ...edges.flatMap((e) => [e.source, e.destination])];
  const byName = new Map(services.map((x) => [x.name, x]));
  const { pos, width, height } = layout(names, edges);
  const extraTop = 0;
  const extraBottom = edges.some((e) => e.source === e.destination) ? 50 : 0;
  const extraRight = edges.some((e) => e.source !== e.destination && pos.get(e.destination).layer === pos.get(e.source).layer) ? 150 : 0;
  const svg = s('svg', {
    viewBox: `0 ${-extraTop} ${width + extraRight} ${height + extraTop + extraBottom}`, width: width + extraRight, height: height + extraTop + extraBottom,
    role: 'group', 'aria-label': `Service map of mesh ${mesh}`, class: 'service-map',
  });
  // Shrink to fit, but not below 70%: past that the wrapper scrolls.
  svg.style.minWidth = `${Math.round((width + extraRight) * 0.7)}px`;
  const defs = s('defs');
  for (const c of ['ok', 'warn', 'bad', 'idle']) {
    defs.append(s('marker', { id: `arrow-${c}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: `map-arrow ${c}` })));
  }
  svg.append(defs);
  const edgeLayer = s('g', { class: 'edges' });
  const labelLayer = s('g', { class: 'labels' });
  const sortedEdges = [...edges].sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination));
  const ends = edgeEnds(sortedEdges, pos);
  const placed = [...pos.values()].map((n) => ({ x0: n.x, x1: n.x + NODE_W, y0: n.y, y1: n.y + NODE_H }));
  for (const e of sortedEdges) {
    const a = pos.get(e.source);
    const b = pos.get(e.destination);
    const c = edgeClass(e);
    const p = edgePath(a, b, e.source === e.destination, ends.get(`${e.source}\u0000${e.destination}`));
    const rps = Number(e.requestsPerSecond) || 0;
    const label = `${fmtRate(rps)} · ${fmtPercent(e.errorRate)} err`;
    const g = s('g', { class: `map-edge ${c}`, 'data-source': e.source, 'data-destination': e.destination, 'data-rps': rps },
      s('title', {}, `${e.source} → ${e.destination}: ${label}, ${e.requests ?? 0} requests`),
      s('path', { d: p.d, 'marker-end': `url(#arrow-${c})`, 'stroke-width': (1.5 + Math.min(4, Math.log10(1 + rps) * 2)).toFixed(2) }));
    edgeLayer.append(g);
    placeLabel(placed, p, label);
    labelLayer.append(s('g', { class: `map-edge ${c}`, 'data-source': e.source, 'data-destination': e.destination, 'aria-hidden': 'true' }, s('text', { x: p.lx, y: p.ly, 'text-anchor': p.anchor || 'middle' }, label)));
  }
  const nodeLayer = s('g', { class: 'nodes' });
  for (const name of [...pos.keys()]) {
    const { x, y } = pos.get(name);
    const n = byName.get(name) || { name };
    const d = n.dataplanes;
    const sub = d ? `${d.online ?? 0}/${d.total ?? 0} proxies online` : 'no proxy';
    nodeLayer.append(s('a', { href: href('meshes', mesh, 'services', name), class: `map-node ${nodeClass(n)}`, 'data-service': name, 'aria-label': `${name}: ${sub}` },
      s('title', {}, `${name}: ${sub}`),
      s('rect', { x, y, width: NODE_W, height: NODE_H, rx: 10 }),
      s('text', { x: x + 14, y: y + 24 }, truncate(name, 20)),
      s('text', { x: x + 14, y: y + 44, class: 'sub' }, sub)));
  }
  svg.append(edgeLayer, nodeLayer, labelLayer);
  highlightOnHover(svg);
  return svg;
}

/** highlightOnHover dims the edges a hovered or focused node has no part in. */
function highlightOnHover(svg) {
  const set = (name) => {
    svg.classList.toggle('focus-mode', !!name);
    for (const g of svg.querySelectorAll('.map-edge[data-source]')) {
      g.classList.toggle('hl', !!name && (g.dataset.source === name || g.dataset.destination === name));
    }
  };
  for (const node of svg.querySelectorAll('.map-node')) {
    const name = node.dataset.service;
    node.addEventListener('mouseenter', () => set(name));
    node.addEventListener('mouseleave', () => set(null));
    node.addEventListener('focus', () => set(name));
    node.addEventListener('blur', () => set(null));
  }
}
