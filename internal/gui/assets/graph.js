// The service map as an SVG: services laid out in layers by call depth
// (callers first, the services they call after them: left to right, or
// top to bottom on narrow screens), deterministic for the same input,
// with edges labelled by request rate and error rate.
import { s, href, fmtRate, fmtPercent, errorClass } from './dom.js';

const PAD = 30;

// Geometry per orientation. u runs along the layers (left to right, or
// top to bottom), v across them. len is a node's size along u, span
// across; gap is the room between layers, step between nodes of a layer.
const GEOMETRY = {
  horizontal: { w: 176, h: 58, len: 176, span: 58, gap: 140, step: 34, chars: 20 },
  vertical: { w: 150, h: 58, len: 58, span: 150, gap: 84, step: 18, chars: 17 },
};

/**
 * layout places nodes in layers: returns {pos: Map(name -> {u, v, layer}),
 * lenU, lenV}, the extents along and across the layers.
 */
export function layout(names, edges, g = GEOMETRY.horizontal) {
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
  // Order each layer by the mean position of its callers (then by name).
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
  const lenV = PAD * 2 + maxRows * g.span + (maxRows - 1) * g.step;
  const lenU = PAD * 2 + layers.length * g.len + Math.max(0, layers.length - 1) * g.gap;
  const pos = new Map();
  layers.forEach((col, li) => {
    const colV = col.length * g.span + (col.length - 1) * g.step;
    const top = (lenV - colV) / 2;
    col.forEach((n, i) => pos.set(n, { u: PAD + li * (g.len + g.gap), v: top + i * (g.span + g.step), layer: li }));
  });
  return { pos, lenU: Math.max(lenU, g.len + PAD * 2), lenV: Math.max(lenV, g.span + PAD * 2) };
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
  const w = 1 - t;
  const f = (a, b, c, d) => w * w * w * a + 3 * w * w * t * b + 3 * w * t * t * c + t * t * t * d;
  return { u: f(p0.u, p1.u, p2.u, p3.u), v: f(p0.v, p1.v, p2.v, p3.v) };
}

/**
 * edgePath returns the path of an edge, in u/v coordinates, and where its
 * label goes. ends gives the offsets (0..1 across the node) where it
 * leaves a and reaches b, so edges sharing a node do not share an end.
 */
function edgePath(a, b, ends, g) {
  if (b.layer > a.layer) {
    const p0 = { u: a.u + g.len, v: a.v + g.span * ends.out };
    const p3 = { u: b.u - 4, v: b.v + g.span * ends.in };
    const du = Math.min(g.gap, (p3.u - p0.u) / 2);
    const p1 = { u: p0.u + du, v: p0.v };
    const p2 = { u: p3.u - du, v: p3.v };
    // The label sits in the gap just before the target, where no node is.
    const want = p3.u - g.gap / 2;
    let lo = 0;
    let hi = 1;
    for (let i = 0; i < 30; i++) {
      const mid = (lo + hi) / 2;
      if (bezierAt(p0, p1, p2, p3, mid).u < want) lo = mid; else hi = mid;
    }
    return { pts: [p0, p1, p2, p3], label: bezierAt(p0, p1, p2, p3, lo), side: 0 };
  }
  if (b.layer < a.layer) {
    // Backwards: from the caller's near side to the callee's far side.
    const p0 = { u: a.u, v: a.v + g.span * 0.85 };
    const p3 = { u: b.u + g.len + 4, v: b.v + g.span * 0.85 };
    const du = Math.min(g.gap, (p0.u - p3.u) / 2);
    const pts = [p0, { u: p0.u - du, v: p0.v }, { u: p3.u + du, v: p3.v }, p3];
    return { pts, label: bezierAt(...pts, 0.5), side: 1 };
  }
  // Same layer: an arc beyond the layer's far side.
  const p0 = { u: a.u + g.len, v: a.v + g.span * 0.8 };
  const p3 = { u: b.u + g.len + 4, v: b.v + g.span * 0.2 };
  const bulge = 40 + Math.abs(p3.v - p0.v) / 4;
  const pts = [p0, { u: p0.u + bulge, v: p0.v }, { u: p3.u + bulge, v: p3.v }, p3];
  return { pts, label: bezierAt(...pts, 0.5), side: 2 };
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
      list.sort((x, y) => pos.get(x[other]).v - pos.get(y[other]).v || x[other].localeCompare(y[other]));
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
 * placeLabel moves a label down, then up, in small steps until its box
 * overlaps no node and no label placed before it; it returns its y.
 */
function placeLabel(placed, x, y, anchor, text) {
  const w = text.length * 6.6 + 6;
  const box = (yy) => {
    const x0 = anchor === 'start' ? x : x - w / 2;
    return { x0, x1: x0 + w, y0: yy - 12, y1: yy + 3 };
  };
  const hits = (b) => placed.some((o) => b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1);
  let at = y;
  for (let i = 0; i < 12; i++) {
    const yy = y + (i % 2 ? -1 : 1) * Math.ceil(i / 2) * 15;
    if (!hits(box(yy))) { at = yy; break; }
  }
  placed.push(box(at));
  return at;
}

/**
 * drawMap renders services [{name, dataplanes}] and edges into an <svg>.
 * Nodes link to the service pages of mesh. With vertical, layers run top
 * to bottom (for narrow screens).
 */
export function drawMap(mesh, services, edges, { vertical = false } = {}) {
  const g = vertical ? GEOMETRY.vertical : GEOMETRY.horizontal;
  const xy = vertical ? (p) => ({ x: p.v, y: p.u }) : (p) => ({ x: p.u, y: p.v });
  const names = [...services.map((x) => x.name), ...edges.flatMap((e) => [e.source, e.destination])];
  const byName = new Map(services.map((x) => [x.name, x]));
  const { pos, lenU, lenV } = layout(names, edges, g);
  const selfLoops = edges.some((e) => e.source === e.destination);
  const sameLayer = edges.some((e) => e.source !== e.destination && pos.get(e.destination).layer === pos.get(e.source).layer);
  // Room for arcs beyond the last layer and for self-loops.
  const extraU = sameLayer ? (vertical ? 80 : 150) : 0;
  const size = xy({ u: lenU + extraU, v: lenV });
  const width = size.x + (vertical && selfLoops ? 40 : 0);
  const height = size.y + (!vertical && selfLoops ? 50 : 0) + (vertical && selfLoops ? 30 : 0);
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height,
    role: 'group', 'aria-label': `Service map of mesh ${mesh}`, class: 'service-map',
  });
  // Shrink to fit, but not below 70%: past that the wrapper scrolls.
  svg.style.minWidth = `${Math.round(width * 0.7)}px`;
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
  const placed = [...pos.values()].map((n) => {
    const p = xy(n);
    return { x0: p.x, x1: p.x + g.w, y0: p.y, y1: p.y + g.h };
  });
  for (const e of sortedEdges) {
    const c = edgeClass(e);
    const rps = Number(e.requestsPerSecond) || 0;
    const label = `${fmtRate(rps)} · ${fmtPercent(e.errorRate)} err`;
    let d;
    let lx;
    let ly;
    let anchor = 'middle';
    if (e.source === e.destination) {
      const n = xy(pos.get(e.source));
      const x = n.x + g.w;
      const y = n.y + g.h;
      d = `M${x - 40},${y} C${x - 40},${y + 38} ${x + 34},${y + 30} ${x + 2},${y - 12}`;
      lx = x + 4;
      ly = y + 40;
    } else {
      const p = edgePath(pos.get(e.source), pos.get(e.destination), ends.get(`${e.source}\u0000${e.destination}`) || { out: 0.5, in: 0.5 }, g);
      const [p0, p1, p2, p3] = p.pts.map(xy);
      d = `M${p0.x},${p0.y} C${p1.x},${p1.y} ${p2.x},${p2.y} ${p3.x},${p3.y}`;
      const at = xy(p.label);
      // Labels sit above a horizontal edge, and on a vertical one (their
      // halo hides the line behind them).
      if (vertical) {
        lx = at.x;
        ly = at.y + 4;
      } else {
        lx = at.x + (p.side === 2 ? 6 : 0);
        ly = at.y + (p.side === 1 ? 16 : p.side === 2 ? 0 : -7);
        anchor = p.side === 2 ? 'start' : 'middle';
      }
    }
    edgeLayer.append(s('g', { class: `map-edge ${c}`, 'data-source': e.source, 'data-destination': e.destination, 'data-rps': rps },
      s('title', {}, `${e.source} → ${e.destination}: ${label}, ${e.requests ?? 0} requests`),
      s('path', { d, 'marker-end': `url(#arrow-${c})`, 'stroke-width': (1.5 + Math.min(4, Math.log10(1 + rps) * 2)).toFixed(2) })));
    ly = placeLabel(placed, lx, ly, anchor, label);
    labelLayer.append(s('g', { class: `map-edge ${c}`, 'data-source': e.source, 'data-destination': e.destination, 'aria-hidden': 'true' },
      s('text', { x: lx, y: ly, 'text-anchor': anchor }, label)));
  }
  const nodeLayer = s('g', { class: 'nodes' });
  for (const name of [...pos.keys()]) {
    const { x, y } = xy(pos.get(name));
    const n = byName.get(name) || { name };
    const dp = n.dataplanes;
    const sub = dp ? `${dp.online ?? 0}/${dp.total ?? 0} proxies online` : 'no proxy';
    nodeLayer.append(s('a', { href: href('meshes', mesh, 'services', name), class: `map-node ${nodeClass(n)}`, 'data-service': name, 'aria-label': `${name}: ${sub}` },
      s('title', {}, `${name}: ${sub}`),
      s('rect', { x, y, width: g.w, height: g.h, rx: 10 }),
      s('text', { x: x + 14, y: y + 24 }, truncate(name, g.chars)),
      s('text', { x: x + 14, y: y + 44, class: 'sub' }, sub)));
  }
  svg.append(edgeLayer, nodeLayer, labelLayer);
  highlightOnHover(svg);
  return svg;
}

// hovered is the service under the pointer or focus; it outlives a
// refresh, which draws a new SVG.
let hovered = null;

/** highlightOnHover dims the edges a hovered or focused node has no part in. */
function highlightOnHover(svg) {
  const set = (name) => {
    hovered = name;
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
  if (hovered && svg.querySelector(`.map-node[data-service="${CSS.escape(hovered)}"]`)) set(hovered);
  else hovered = null;
}

/** narrow tells whether the map should run top to bottom. */
export function narrow() {
  return window.matchMedia('(max-width: 640px)').matches;
}
