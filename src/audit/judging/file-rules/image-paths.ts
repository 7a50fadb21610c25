/**
 * Paths inside an image, resolved as a process chrooted into it would: symlinks followed in
 * every component from what the walk recorded, absolute targets from the image's root, `..` at
 * the root staying there. Nothing on the host is ever looked at, so nothing leads out of the tree.
 */
export class ImagePaths {
  /** Every name the walk reported, by directory: what glob(3) could list. */
  private readonly children = new Map<string, string[]>();

  constructor(private readonly files: ReadonlyMap<string, string>, private readonly links: ReadonlyMap<string, string>) {
    for (const path of [...files.keys(), ...links.keys()]) {
      const dir = parentOf(path);
      this.children.set(dir, [...(this.children.get(dir) ?? []), path.slice(path.lastIndexOf("/") + 1)]);
    }
  }

  /** The path with every link resolved; undefined for a loop (more than 40 links, as Linux). */
  resolve(path: string): string | undefined {
    const out: string[] = [];
    const rest = path.split("/");
    for (let hops = 0; rest.length > 0;) {
      const name = rest.shift() ?? "";
      if (name === "" || name === ".") continue;
      if (name === "..") { out.pop(); continue; }
      const here = `/${[...out, name].join("/")}`;
      const target = this.links.get(here);
      if (target === undefined) { out.push(name); continue; }
      if (++hops > 40) return undefined;
      if (target.startsWith("/")) out.length = 0;
      rest.unshift(...target.split("/"));
    }
    return `/${out.join("/")}`;
  }

  /** A file's content through links; undefined when it is not a file the walk kept. */
  content(path: string): string | undefined {
    const real = this.resolve(path);
    return real === undefined ? undefined : this.files.get(real);
  }

  /**
   * The names glob(3) gives for an absolute pattern, sorted: `*`, `?` and `[...]` (`[!...]`)
   * in the last component, a leading dot matched only by a leading dot. The directory part is
   * resolved through links; the names returned are in the resolved directory.
   */
  glob(pattern: string): { directory: string | undefined; names: string[] } {
    const base = pattern.slice(pattern.lastIndexOf("/") + 1);
    const directory = this.resolve(parentOf(pattern));
    if (directory === undefined) return { directory, names: [] };
    const regex = globRegex(base);
    const names = (this.children.get(directory) ?? []).filter((n) => regex.test(n)).sort();
    return { directory, names: names.map((n) => (directory === "/" ? `/${n}` : `${directory}/${n}`)) };
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** One path component's glob as a regex (fnmatch without FNM_PERIOD's exception for a dot pattern). */
export function globRegex(glob: string): RegExp {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? "";
    if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else if (c === "[") {
      // A `]` first in the set (after any `!`) is a member, not the end.
      const first = i + 1 + (glob[i + 1] === "!" || glob[i + 1] === "^" ? 1 : 0);
      const close = glob.indexOf("]", first + 1);
      if (close === -1) { source += "\\["; continue; }
      let body = glob.slice(i + 1, close);
      const negated = body.startsWith("!") || body.startsWith("^");
      if (negated) body = body.slice(1);
      source += `[${negated ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = close;
    } else if (c === "\\" && i + 1 < glob.length) source += (glob[++i] ?? "").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    else source += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  // glob(3) without GLOB_PERIOD: a leading dot is matched only by a literal leading dot.
  return new RegExp(glob.startsWith(".") ? `^${source}$` : `^(?!\\.)${source}$`);
}
