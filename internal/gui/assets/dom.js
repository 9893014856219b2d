// Small DOM helpers: an element builder, badges, tables that turn into
// cards at phone width, and formatting. No framework.

/**
 * h builds an element: h('a', {href: '#/'}, 'text', child, [more]).
 * Attributes starting with "on" are event listeners; class may be a string;
 * null, undefined and false children are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** s builds an SVG element, as h does. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** link to a hash route made of segments, each URI-encoded. */
export function href(...segments) {
  return '#/' + segments.map((x) => encodeURIComponent(x)).join('/');
}

export function link(text, ...segments) {
  return h('a', { href: href(...segments) }, text);
}

/** badge renders a status pill; kind is ok, warn, bad, info or neutral. */
export function badge(text, kind = 'neutral', plain = false) {
  return h('span', { class: `badge ${kind}${plain ? ' plain' : ''}` }, text);
}

export function statusBadge(status) {
  const kinds = { online: 'ok', offline: 'bad', degraded: 'warn' };
  const labels = { online: 'Online', offline: 'Offline', degraded: 'Degraded' };
  return badge(labels[status] || status, kinds[status] || 'neutral');
}

/** chips renders tags ({k: v}) as key=value chips. */
export function tagChips(tags, skip = []) {
  const entries = Object.entries(tags || {}).filter(([k]) => !skip.includes(k)).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'chips' }, entries.map(([k, v]) => h('span', { class: 'chip' }, h('b', {}, k + '='), v)));
}

/**
 * table renders rows as a table (cards below 700px).
 * columns: [{label, cell: (row) => node|string, num?: true}]
 */
export function table(columns, rows, { empty = 'Nothing here yet.', caption } = {}) {
  const body = h('tbody');
  fillRows(body, columns, rows, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'responsive' },
      caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      body));
}

/**
 * sortable turns the headers of the columns that have a sort key
 * (row => string or number) into buttons. state is {key, dir} with key a
 * column label and dir 1 or -1; onChange runs after a click. It returns
 * sort(rows), which sorts a copy by the current state.
 */
export function sortable(tableEl, columns, state, onChange) {
  const ths = tableEl.querySelectorAll('thead th');
  const paint = () => columns.forEach((c, i) => {
    if (!c.sort) return;
    ths[i].setAttribute('aria-sort', state.key === c.label ? (state.dir > 0 ? 'ascending' : 'descending') : 'none');
    ths[i].querySelector('.arrow').textContent = state.key === c.label ? (state.dir > 0 ? ' ▲' : ' ▼') : '';
  });
  columns.forEach((c, i) => {
    if (!c.sort) return;
    ths[i].replaceChildren(h('button', { type: 'button', class: 'th-sort', onclick: () => {
      state.dir = state.key === c.label ? -state.dir : 1;
      state.key = c.label;
      paint();
      onChange();
    } }, c.label, h('span', { class: 'arrow', 'aria-hidden': 'true' })));
  });
  paint();
  return (rows) => {
    const col = columns.find((c) => c.label === state.key && c.sort);
    if (!col) return rows;
    return [...rows].sort((a, b) => {
      const x = col.sort(a);
      const y = col.sort(b);
      const cmp = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
      return cmp * state.dir;
    });
  };
}

/** ROW_LIMIT is how many rows a list shows before a "Show all" button. */
export const ROW_LIMIT = 300;

/**
 * fillRows replaces a tbody's rows (used by live lists). Past limit rows,
 * a button shows the rest.
 */
export function fillRows(body, columns, rows, empty = 'Nothing here yet.', limit = ROW_LIMIT) {
  const frag = document.createDocumentFragment();
  if (!rows.length) {
    frag.append(h('tr', {}, h('td', { class: 'empty', colspan: columns.length }, empty)));
  }
  for (const row of rows.slice(0, limit)) {
    frag.append(h('tr', {}, columns.map((c) => h('td', { 'data-label': c.label, class: c.num ? 'num' : null }, h('div', { class: 'cell' }, c.cell(row))))));
  }
  if (rows.length > limit) {
    frag.append(h('tr', {}, h('td', { class: 'empty', colspan: columns.length },
      h('button', { type: 'button', onclick: () => fillRows(body, columns, rows, empty, Infinity) }, `Show all ${rows.length}`))));
  }
  body.replaceChildren(frag);
}

/** pageHead renders breadcrumbs, a title and extra items. */
export function pageHead(title, { crumbs = [], sub = [], actions = [] } = {}) {
  return h('div', { class: 'page-head' },
    h('div', {},
      crumbs.length ? h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
        crumbs.map((c, i) => [i ? ' / ' : '', c])) : null,
      h('h1', {}, title),
      sub.length ? h('div', { class: 'sub' }, sub) : null),
    actions.length ? h('div', { class: 'toolbar' }, actions) : null);
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : null, children);
}

export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

export function stat(label, value, detail, extra) {
  return h('div', { class: 'card stat' },
    h('span', { class: 'label' }, label),
    h('span', { class: 'value' }, String(value)),
    detail ? h('span', { class: 'detail' }, detail) : null,
    extra || null);
}

/** onlineBar draws the online/offline share of a total. */
export function onlineBar(online, offline) {
  const total = online + offline;
  if (!total) return null;
  const on = h('span', { class: 'on' });
  const off = h('span', { class: 'off' });
  on.style.width = `${(online / total) * 100}%`;
  off.style.width = `${(offline / total) * 100}%`;
  return h('div', { class: 'bar', role: 'img', 'aria-label': `${online} online, ${offline} offline` }, on, off);
}

export function errorBox(err) {
  return h('div', { class: 'error-box', role: 'alert' },
    h('strong', {}, err.title || 'Something went wrong'),
    h('p', {}, err.detail || err.message || String(err)));
}

// Formatting.

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 2) return '—';
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** ago renders how long ago (or, for future times, in how long) iso is. */
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '—';
  const diff = Math.round((now - t) / 1000);
  const abs = Math.abs(diff);
  let text;
  if (abs < 5) return 'just now';
  if (abs < 60) text = `${abs} s`;
  else if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86400) text = `${Math.round(abs / 3600)} h`;
  else text = `${Math.round(abs / 86400)} d`;
  return diff >= 0 ? `${text} ago` : `in ${text}`;
}

export function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: fmtTime(iso) }, ago(iso));
}

export function fmtRate(rps) {
  const v = Number(rps) || 0;
  if (v === 0) return '0 req/s';
  if (v < 0.1) return `${v.toFixed(3)} req/s`;
  if (v < 10) return `${v.toFixed(1)} req/s`;
  return `${Math.round(v)} req/s`;
}

export function fmtPercent(ratio) {
  const v = (Number(ratio) || 0) * 100;
  if (v === 0) return '0%';
  if (v < 0.1) return '<0.1%';
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}%`;
}

/** errorClass grades an error ratio for colouring. */
export function errorClass(ratio) {
  const v = Number(ratio) || 0;
  if (v >= 0.05) return 'bad';
  if (v >= 0.01) return 'warn';
  return 'ok';
}

/** searchInput returns a search box that calls onInput (debounced). */
export function searchInput(label, value, onInput) {
  let timer;
  return h('input', {
    type: 'search', placeholder: `${label} ( / )`, 'aria-label': label, 'aria-keyshortcuts': '/', value: value || '',
    oninput: (e) => { clearTimeout(timer); timer = setTimeout(() => onInput(e.target.value), 120); },
  });
}

export function select(label, options, value, onChange) {
  return h('label', {}, label,
    h('select', { onchange: (e) => onChange(e.target.value) },
      options.map(([v, text]) => h('option', { value: v, selected: v === value }, text))));
}

/**
 * swap replaces container's content with node, keeping keyboard focus on
 * the link or control with the same href, id or data-key.
 */
export function swap(container, node) {
  const active = document.activeElement;
  let selector = null;
  if (active && container.contains(active)) {
    for (const attr of ['data-key', 'id', 'href']) {
      const v = active.getAttribute(attr);
      if (v) { selector = `[${attr}="${CSS.escape(v)}"]`; break; }
    }
  }
  container.replaceChildren(node);
  if (selector) container.querySelector(selector)?.focus({ preventScroll: true });
}

/** liveNote is the "updated … ago" line of a refreshing page. */
export function liveNote(text = 'Live') {
  return h('span', { class: 'muted small', 'data-live': '', 'aria-live': 'off' }, text);
}
