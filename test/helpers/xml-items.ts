/** The top-level <item>s of one EC2 result set (imagesSet, snapshotSet), each rewritten by `change`. */
export function rewriteItems(document: string, set: string, change: (item: string) => string): string {
  const open = document.indexOf(`<${set}>`);
  const close = document.lastIndexOf(`</${set}>`);
  if (open < 0 || close < 0) return document;
  const start = open + set.length + 2;
  const inner = document.slice(start, close);
  const items: string[] = [];
  let depth = 0;
  let from = 0;
  for (const tag of inner.matchAll(/<(\/?)item>/g)) {
    if (tag[1] === "") {
      if (depth === 0) from = tag.index;
      depth++;
    } else if (--depth === 0) {
      items.push(inner.slice(from, tag.index + tag[0].length));
    }
  }
  return document.slice(0, start) + items.map(change).join("") + document.slice(close);
}

/** The text of a direct child element (<status>completed</status> → "completed"). */
export const elementText = (item: string, name: string): string | undefined => new RegExp(`<${name}>([^<]*)</${name}>`).exec(item)?.[1];

/** The item without these elements (each written <x>…</x> or <x/>), not nested in one another. */
export function withoutElements(item: string, names: string[]): string {
  return names.reduce((rest, name) => rest.replace(new RegExp(`<${name}>[\\s\\S]*?</${name}>|<${name}/>`), ""), item);
}

export const escapeXml = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
