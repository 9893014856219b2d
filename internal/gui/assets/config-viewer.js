// A collapsible, searchable view of a large JSON document (a proxy's
// generated xDS): loaded when first opened, matches highlighted, Enter
// jumps to the next one.
import { h, errorBox } from './dom.js';

const MAX_MARKS = 2000;

/** configViewer returns a <details> that shows what load() resolves to. */
export function configViewer(title, load, rawHref) {
  const pre = h('pre', { class: 'code', tabindex: '0', 'aria-label': title });
  const count = h('span', { class: 'count', 'aria-live': 'polite' });
  let text = '';
  let marks = [];
  let current = -1;
  const search = h('input', { type: 'search', placeholder: 'Search the configuration', 'aria-label': 'Search the configuration' });
  const copy = h('button', { type: 'button', onclick: async () => {
    try { await navigator.clipboard.writeText(text); copy.textContent = 'Copied'; } catch { copy.textContent = 'Copy failed'; }
    setTimeout(() => { copy.textContent = 'Copy'; }, 1500);
  } }, 'Copy');
  const body = h('div', { class: 'body' }, h('p', { class: 'muted' }, 'Loading…'));
  let loaded = false;

  const highlight = (q) => {
    marks = [];
    current = -1;
    if (!q) {
      pre.textContent = text;
      count.textContent = `${text.split('\n').length} lines`;
      return;
    }
    const lower = text.toLowerCase();
    const needle = q.toLowerCase();
    const frag = document.createDocumentFragment();
    let at = 0;
    let n = 0;
    for (let i = lower.indexOf(needle); i >= 0 && n < MAX_MARKS; i = lower.indexOf(needle, i + needle.length), n++) {
      frag.append(text.slice(at, i));
      const m = h('mark', {}, text.slice(i, i + needle.length));
      marks.push(m);
      frag.append(m);
      at = i + needle.length;
    }
    frag.append(text.slice(at));
    pre.replaceChildren(frag);
    count.textContent = marks.length ? `${marks.length}${marks.length >= MAX_MARKS ? '+' : ''} matches` : 'no match';
    if (marks.length) go(0);
  };
  const go = (i) => {
    marks[current]?.classList.remove('current');
    current = (i + marks.length) % marks.length;
    const m = marks[current];
    m.classList.add('current');
    pre.scrollTop = Math.max(0, m.offsetTop - pre.offsetTop - pre.clientHeight / 3);
    count.textContent = `${current + 1} of ${marks.length}`;
  };
  let timer;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => highlight(search.value), 150); });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && marks.length) { e.preventDefault(); go(current + (e.shiftKey ? -1 : 1)); }
  });

  const details = h('details', { class: 'collapsible' }, h('summary', {}, title), body);
  details.addEventListener('toggle', async () => {
    if (!details.open || loaded) return;
    loaded = true;
    try {
      const doc = await load();
      text = JSON.stringify(doc, null, 2);
      body.replaceChildren(h('div', { class: 'toolbar' }, search, copy, rawHref ? h('a', { href: rawHref, class: 'small' }, 'Raw JSON') : null, count), pre);
      highlight('');
    } catch (err) {
      if (err.name === 'AbortError') return;
      loaded = false;
      body.replaceChildren(errorBox(err));
    }
  });
  return details;
}
