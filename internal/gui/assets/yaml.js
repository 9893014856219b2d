// toYAML renders JSON values as YAML for reading (block style, keys in
// the order the API sent them). Strings that YAML would read as something
// else are quoted.

const PLAIN = /^[A-Za-z0-9_./@%+-][A-Za-z0-9_ ./@%+=:,()*-]*$/;
const SPECIAL = /^(true|false|yes|no|on|off|null|~|y|n|[-+]?(\d[\d_]*)?\.?\d+([eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+|\.inf|\.nan)$/i;

function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const str = String(v);
  if (str === '' || !PLAIN.test(str) || SPECIAL.test(str) || str.endsWith(' ') || str.includes(': ') || str.includes(' #') || str.endsWith(':')) {
    return JSON.stringify(str);
  }
  return str;
}

function key(k) {
  return PLAIN.test(k) && !SPECIAL.test(k) && !k.includes(': ') && !k.endsWith(':') ? k : JSON.stringify(k);
}

function isEmpty(v) {
  return (Array.isArray(v) && v.length === 0) || (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0);
}

function emit(v, indent, out) {
  const pad = '  '.repeat(indent);
  if (Array.isArray(v)) {
    for (const item of v) {
      if (item && typeof item === 'object' && !isEmpty(item)) {
        const sub = [];
        emit(item, indent + 1, sub);
        sub[0] = `${pad}- ${sub[0].trimStart()}`;
        out.push(...sub);
      } else {
        out.push(`${pad}- ${isEmpty(item) ? (Array.isArray(item) ? '[]' : '{}') : scalar(item)}`);
      }
    }
    return;
  }
  for (const [k, val] of Object.entries(v)) {
    if (val && typeof val === 'object' && !isEmpty(val)) {
      out.push(`${pad}${key(k)}:`);
      emit(val, Array.isArray(val) ? indent : indent + 1, out);
    } else {
      out.push(`${pad}${key(k)}: ${isEmpty(val) ? (Array.isArray(val) ? '[]' : '{}') : scalar(val)}`);
    }
  }
}

export function toYAML(value) {
  if (value === null || typeof value !== 'object') return scalar(value) + '\n';
  if (isEmpty(value)) return (Array.isArray(value) ? '[]' : '{}') + '\n';
  const out = [];
  emit(value, 0, out);
  return out.join('\n') + '\n';
}
