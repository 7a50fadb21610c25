import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

export const defaultDebianMirror = "http://deb.debian.org/debian";

/**
 * The mirror this machine's apt uses for `suite`, read from sources.list and sources.list.d
 * (one-line and deb822 formats). Falls back to Debian's redirector when none lists the suite.
 */
export async function machineMirror(suite: string, aptDirectory = "/etc/apt"): Promise<string> {
  return (await listedMirror(suite, aptDirectory)) ?? defaultDebianMirror;
}

/**
 * The apt lines a base for `suite` gets: the suite from `mirror`, plus its -updates and
 * -security suites where this machine's apt lists them (so images get security fixes, and no
 * suite that does not exist is asked for).
 */
export async function baseSources(suite: string, components: readonly string[], mirror: string | undefined, aptDirectory = "/etc/apt"): Promise<string[]> {
  const main = mirror ?? (await machineMirror(suite, aptDirectory));
  const updates = await listedMirror(`${suite}-updates`, aptDirectory);
  const security = await listedMirror(`${suite}-security`, aptDirectory);
  const line = (uri: string, s: string): string => `deb ${uri} ${s} ${components.join(" ")}`;
  return [
    line(main, suite),
    ...(updates === undefined ? [] : [line(mirror ?? updates, `${suite}-updates`)]),
    ...(security === undefined ? [] : [line(security, `${suite}-security`)]),
  ];
}

/** The mirror this machine's apt lists for `suite`, if any. */
async function listedMirror(suite: string, aptDirectory: string): Promise<string | undefined> {
  const files = [join(aptDirectory, "sources.list")];
  const listDirectory = join(aptDirectory, "sources.list.d");
  for (const name of (await readdir(listDirectory).catch(() => [])).sort()) files.push(join(listDirectory, name));
  for (const file of files) {
    const text = await readFile(file, "utf8").catch(() => "");
    const uri = file.endsWith(".sources") ? fromDeb822(text, suite) : fromOneLine(text, suite);
    if (uri !== undefined) return uri.replace(/\/+$/, "");
  }
  return undefined;
}

function fromOneLine(text: string, suite: string): string | undefined {
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").replace(/\[[^\]]*\]/, " ").trim();
    const [type, uri, lineSuite] = line.split(/\s+/);
    if (type === "deb" && lineSuite === suite && uri !== undefined && /^(https?|file):/.test(uri)) return uri;
  }
  return undefined;
}

function fromDeb822(text: string, suite: string): string | undefined {
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string): string[] => {
      const match = new RegExp(`^${name}:\\s*(.*)$`, "im").exec(stanza.split("\n").filter((l) => !l.startsWith("#")).join("\n"));
      return match?.[1]?.trim().split(/\s+/) ?? [];
    };
    if (field("Enabled")[0] === "no" || !field("Types").includes("deb") || !field("Suites").includes(suite)) continue;
    const uri = field("URIs").find((u) => /^(https?|file):/.test(u));
    if (uri !== undefined) return uri;
  }
  return undefined;
}
