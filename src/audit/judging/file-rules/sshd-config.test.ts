import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { before, describe, it } from "node:test";
import { tempDirectory } from "../../../../test/helpers/temp.js";
import { auditImage } from "../../audit-image.js";
import { sshdConfig } from "./sshd-config.js";
import { keyOnlyDefaults, keyOnlyKeywords, notKeyOnly, sshdPossibleValues, words, type KeyOnlyKeyword } from "./sshd-effective.js";

const sshd = "/usr/sbin/sshd";
const main = "/etc/ssh/sshd_config";
const dropIn = (name: string) => `/etc/ssh/sshd_config.d/${name}`;
const kiln = "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitEmptyPasswords no\n";
/** Connections sshd -T is asked about; each Match in the table matches at least one of them. */
const connections = ["user=root,host=x,addr=203.0.113.1", "user=alice,host=x,addr=203.0.113.1", "user=admin,host=x,addr=10.1.2.3"];

/** `links`: symlinks in the image, path to target (relative targets, so sshd on the host resolves them alike). */
interface Row { name: string; files: Record<string, string>; links?: Record<string, string>; notKeyOnly: KeyOnlyKeyword[] }
const table: Row[] = [
  { name: "plain: kiln's settings", files: { [main]: kiln }, notKeyOnly: [] },
  { name: "nothing set: OpenSSH's defaults", files: { [main]: "UseDNS no\n" }, notKeyOnly: ["passwordauthentication", "kbdinteractiveauthentication"] },
  { name: "Match all after kiln's settings re-enables root and passwords", files: { [main]: `${kiln}Match all\nPermitRootLogin yes\nPasswordAuthentication yes\n` }, notKeyOnly: ["permitrootlogin", "passwordauthentication"] },
  { name: "Match User root: PasswordAuthentication yes", files: { [main]: `${kiln}Match User root\n  PasswordAuthentication yes\n` }, notKeyOnly: ["passwordauthentication"] },
  { name: "Match Address 10.0.0.0/8: PermitEmptyPasswords yes", files: { [main]: `${kiln}Match Address 10.0.0.0/8\n  PermitEmptyPasswords yes\n` }, notKeyOnly: ["permitemptypasswords"] },
  { name: "Match User * (every connection) turns a global yes off", files: { [main]: `${kiln.replace("PasswordAuthentication no", "PasswordAuthentication yes")}Match User *\n  PasswordAuthentication no\n` }, notKeyOnly: [] },
  { name: "Match all comes first, so a later Match User root cannot win", files: { [main]: `PasswordAuthentication yes\n${kiln}Match all\n  PasswordAuthentication no\nMatch User root\n  PasswordAuthentication yes\n` }, notKeyOnly: [] },
  { name: "Include of a drop-in that sets PasswordAuthentication yes before kiln's", files: { [main]: `Include /etc/ssh/sshd_config.d/*.conf\n${kiln}`, [dropIn("50-cloud-init.conf")]: "PasswordAuthentication yes\n" }, notKeyOnly: ["passwordauthentication"] },
  { name: "kiln's first, then an Include that says yes: first value wins", files: { [main]: `${kiln}Include sshd_config.d/*.conf\n`, [dropIn("50-cloud-init.conf")]: "PasswordAuthentication yes\nPermitRootLogin yes\n" }, notKeyOnly: [] },
  { name: "drop-ins in name order; a Match in one ends with its file", files: { [main]: `Include /etc/ssh/sshd_config.d/*.conf\n${kiln}`, [dropIn("10-a.conf")]: "PermitRootLogin no\nMatch User alice\nPasswordAuthentication yes\n", [dropIn("20-b.conf")]: "PermitRootLogin yes\n" }, notKeyOnly: ["passwordauthentication"] },
  { name: "Include inside Match User root brings the drop-in's settings into the block", files: { [main]: `${kiln}Match User root\nInclude /etc/ssh/sshd_config.d/*.conf\n`, [dropIn("60-root.conf")]: "PermitRootLogin yes\n" }, notKeyOnly: ["permitrootlogin"] },
  { name: "comments and keywords in any case", files: { [main]: `# PasswordAuthentication yes\n  #PermitRootLogin yes\npasswordauthentication NO\nPERMITROOTLOGIN Yes\nkbdinteractiveauthentication no\n` }, notKeyOnly: ["permitrootlogin"] },
  { name: "quoted values, keyword=value and a trailing comment", files: { [main]: `PermitRootLogin "no"\nPasswordAuthentication="yes" # for the build\nKbdInteractiveAuthentication 'no'\n` }, notKeyOnly: ["passwordauthentication"] },
  { name: "CRLF line ends (sshd drops the CR)", files: { [main]: "PermitRootLogin yes\r\nPasswordAuthentication no\r\nKbdInteractiveAuthentication no\r\n" }, notKeyOnly: ["permitrootlogin"] },
  { name: "a quoted keyword is the keyword", files: { [main]: "\"PermitRootLogin\" yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n" }, notKeyOnly: ["permitrootlogin"] },
  { name: "Include with ? and [..] (sshd uses glob(3))", files: { [main]: `Include /etc/ssh/sshd_config.d/1?-[ab].conf\n${kiln}`, [dropIn("10-a.conf")]: "PasswordAuthentication yes\n" }, notKeyOnly: ["passwordauthentication"] },
  { name: "Include with [!..]: a negated bracket", files: { [main]: `Include /etc/ssh/sshd_config.d/[!9]*.conf\n${kiln}`, [dropIn("10-a.conf")]: "PermitRootLogin yes\n", [dropIn("90-b.conf")]: "PermitEmptyPasswords yes\n" }, notKeyOnly: ["permitrootlogin"] },
  { name: "* does not match a leading dot: a hidden drop-in saying no is not read", files: { [main]: "Include /etc/ssh/sshd_config.d/*\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n", [dropIn(".00-hidden")]: "PasswordAuthentication no\n" }, notKeyOnly: ["passwordauthentication"] },
  { name: "Include of a file outside sshd_config.d", files: { [main]: `Include /opt/app/sshd.conf\n${kiln}`, "/opt/app/sshd.conf": "PermitRootLogin yes\n" }, notKeyOnly: ["permitrootlogin"] },
  { name: "a drop-in that is a symlink to a file elsewhere", files: { [main]: `Include /etc/ssh/sshd_config.d/*.conf\n${kiln}`, "/etc/app/sshd.conf": "PasswordAuthentication yes\n" }, links: { [dropIn("50-app.conf")]: "../../app/sshd.conf" }, notKeyOnly: ["passwordauthentication"] },
  { name: "sshd_config itself a symlink", files: { "/etc/ssh/sshd_config.real": "PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n" }, links: { [main]: "sshd_config.real" }, notKeyOnly: ["permitrootlogin"] },
  { name: "the drop-in directory a symlink", files: { [main]: `Include /etc/ssh/sshd_config.d/*.conf\n${kiln}`, "/etc/ssh/dropins/10-a.conf": "PermitEmptyPasswords yes\n" }, links: { "/etc/ssh/sshd_config.d": "dropins" }, notKeyOnly: ["permitemptypasswords"] },
  { name: "ChallengeResponseAuthentication is KbdInteractiveAuthentication", files: { [main]: "ChallengeResponseAuthentication yes\nKbdInteractiveAuthentication no\nPasswordAuthentication no\n" }, notKeyOnly: ["kbdinteractiveauthentication"] },
  // servconf.c since 8.7: { "skeyauthentication", sKbdInteractiveAuthentication, SSHCFG_ALL }, /* alias */
  { name: "SKeyAuthentication is KbdInteractiveAuthentication too", files: { [main]: "SKeyAuthentication yes\nKbdInteractiveAuthentication no\nPasswordAuthentication no\n" }, notKeyOnly: ["kbdinteractiveauthentication"] },
  { name: "SKeyAuthentication inside a Match block", files: { [main]: `${kiln}Match User alice\n  SKeyAuthentication yes\n` }, notKeyOnly: ["kbdinteractiveauthentication"] },
];

/** The parser's verdict: keywords some connection may get `yes` for (OpenSSH's default where unset). */
function parserVerdict(files: Record<string, string>, links: Record<string, string> = {}): KeyOnlyKeyword[] {
  const possible = sshdPossibleValues(new Map(Object.entries(files)), main, new Map(Object.entries(links)));
  return keyOnlyKeywords.filter((k) => (possible.get(k) ?? []).some((s) => notKeyOnly(s?.value ?? keyOnlyDefaults[k])));
}

const dir = await tempDirectory("kiln-sshd-t-");

describe("sshd's effective configuration: the audit's parser agrees with sshd -T", () => {
  const haveSshd = existsSync(sshd);
  before(async () => {
    if (haveSshd) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
    if (haveSshd && !existsSync("/run/sshd")) await mkdir("/run/sshd", { recursive: true });
  });

  /** sshd's verdict: the same files under a scratch root, Include paths pointed there. */
  async function sshdVerdict(files: Record<string, string>, links: Record<string, string>, rowIndex: number): Promise<KeyOnlyKeyword[]> {
    const root = join(dir, `row-${rowIndex}`);
    for (const [path, target] of Object.entries(links)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await symlink(target, join(root, path));
    }
    for (const [path, content] of Object.entries(files)) {
      const rewritten = content.split("\n").map((line) => {
        const [keyword, ...patterns] = words(line);
        if (keyword?.toLowerCase() !== "include") return line;
        return `Include ${patterns.map((p) => join(root, p.startsWith("/") ? p : `/etc/ssh/${p}`)).join(" ")}`;
      }).join("\n");
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), rewritten);
    }
    const bad = new Set<string>();
    for (const spec of connections) {
      const out = execFileSync(sshd, ["-T", "-f", join(root, main), "-h", join(dir, "host_key"), "-C", spec], { encoding: "utf8" });
      for (const line of out.split("\n")) {
        const [keyword = "", value = ""] = line.split(" ");
        if ((keyOnlyKeywords as string[]).includes(keyword) && notKeyOnly(value)) bad.add(keyword);
      }
    }
    return keyOnlyKeywords.filter((k) => bad.has(k));
  }

  for (const [i, row] of table.entries()) {
    it(row.name, { skip: haveSshd ? false : `no ${sshd} (apt openssh-server)` }, async () => {
      const fromSshd = await sshdVerdict(row.files, row.links ?? {}, i);
      assert.deepEqual(fromSshd, row.notKeyOnly, "the table row disagrees with sshd -T itself");
      assert.deepEqual(parserVerdict(row.files, row.links), fromSshd);
    });
  }

  it("the audit reports a Match all that re-enables root, at its line", () => {
    const rule = sshdConfig();
    const entry = { path: main, type: "file", mode: 0o644, uid: 0, gid: 0, size: 0 } as const;
    rule.visit(entry, `${kiln}Match all\nPermitRootLogin yes\n`);
    const findings = rule.finish?.() ?? [];
    assert.deepEqual(findings.map((f) => [f.rule.id, f.message, f.location.kind === "file" ? f.location.line : 0]), [["sshd-root-login", "PermitRootLogin yes (inside a Match block)", 6]]);
  });

  /** The audit of a real directory tree: every entry as the walk gives it, links as links. */
  async function auditTreeOf(files: Record<string, string>, links: Record<string, string> = {}): Promise<string[][]> {
    const root = await tempDirectory("kiln-sshd-tree-");
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), content);
    }
    for (const [path, target] of Object.entries(links)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await symlink(target, join(root, path));
    }
    const result = await auditImage(root, { failOn: "high" });
    return result.findings.filter((f) => f.rule.id.startsWith("sshd-")).map((f) => [f.rule.id, f.severity, f.location.kind === "file" ? f.location.path : ""]);
  }

  it("the audit judges an Include that points outside /etc/ssh/sshd_config.d", async () => {
    const found = await auditTreeOf({ [main]: `Include /etc/app/sshd/*.conf\n${kiln}`, "/etc/app/sshd/10-root.conf": "PermitRootLogin yes\n" });
    assert.deepEqual(found, [["sshd-root-login", "high", "/etc/app/sshd/10-root.conf"]]);
  });

  it("an Include of configuration outside /etc, which the audit does not read, is a finding itself", async () => {
    const found = await auditTreeOf({ [main]: `Include /opt/app/*.conf\n${kiln}`, "/opt/app/10-root.conf": "PermitRootLogin yes\n" });
    assert.deepEqual(found, [["sshd-config-unread", "high", main]]);
  });

  it("follows a symlinked sshd_config and drop-in inside the image, absolute targets from the image's root", async () => {
    const found = await auditTreeOf(
      { "/etc/ssh/real_config": `Include /etc/ssh/sshd_config.d/*.conf\n${kiln}`, "/etc/ssh/elsewhere/pw.conf": "PasswordAuthentication yes\n" },
      { [main]: "/etc/ssh/real_config", [dropIn("50-pw.conf")]: "/etc/ssh/elsewhere/pw.conf" },
    );
    assert.deepEqual(found, [["sshd-password-authentication", "high", "/etc/ssh/elsewhere/pw.conf"]]);
  });

  it("a link that climbs out of the tree stays inside it (.. at the root is the root)", async () => {
    const found = await auditTreeOf({ "/etc/ssh/real_config": "PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n" }, { [main]: "../../../../../../../etc/ssh/real_config" });
    assert.deepEqual(found, [["sshd-root-login", "high", "/etc/ssh/real_config"]]);
  });

  it("an unset KbdInteractiveAuthentication is reported (OpenSSH's default is yes; with PAM it takes passwords)", async () => {
    const found = await auditTreeOf({ [main]: "UsePAM yes\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n" });
    assert.deepEqual(found, [["sshd-kbd-interactive", "high", main]]);
  });
});
