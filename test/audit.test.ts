import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { auditImage } from "../src/audit/audit-image.js";
import type { Finding } from "../src/audit/finding.js";
import { runKiln } from "./helpers/kiln-process.js";

// Secrets are assembled at run time so that this file holds none, and CI logs show none.
const keyId = ["AKIA", "Q3EGUKJP4XM2ZL7V"].join("");
const secretKey = ["wJ8rXUtnFEMI", "K7MDENGbPxRfiCY", "9sF2kQzLpWq3T"].join("");
const githubToken = ["ghp_", "R4nd0mT0k3nV4lu3sXyZ", "aBcDeFgHiJkLmNoP"].join("");
const slackToken = ["xoxb", "2301948576", "Zq8LmN3pR7tVw"].join("-");
const dbPassword = ["Tr0ub4dor", "&3-Kiln"].join("");
const deletedMarker = ["KILN-DELETED", "gift-certificate-7731"].join("-");
const csvSecret = ["q8Lm3Np", "R7tVw2Xy", "Z4aBcDeFgHiJkLmNoPqRsTu"].join("/");
const clientSecret = ["Zq8vLm2", "PnR4tY"].join("");

/** Every rule that must be found, and where, in the fixture tree below. */
const expected = [
  "authorized-keys /root/.ssh/authorized_keys",
  "authorized-keys /ProgramData/ssh/administrators_authorized_keys",
  "private-key /home/admin/.ssh/id_ed25519",
  "private-key /home/admin/putty.ppk",
  "encrypted-private-key /home/admin/.ssh/id_locked",
  "aws-credentials /opt/app/deploy.env",
  "aws-key-id /opt/app/notes.txt",
  "credentials-file /root/.aws/credentials",
  "credentials-file /home/admin/.docker/config.json",
  "credentials-file /home/admin/.git-credentials",
  "credentials-file /home/admin/.netrc",
  "credentials-file /home/admin/.pgpass",
  "token /srv/app/settings.yaml",
  "token /var/log/app/worker.log.1.zst",
  "secret-assignment /etc/app/db.conf",
  "secret-assignment /var/log/app/install.log.2.gz",
  "shell-history /root/.bash_history",
  "shell-history /home/admin/.python_history",
  "shell-history /home/admin/.local/share/fish/fish_history",
  "shell-history /Users/builder/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt",
  "password-hash /etc/shadow",
  "empty-password /etc/shadow",
  "sshd-root-login /etc/ssh/sshd_config.d/50-build.conf",
  "sshd-password-authentication /etc/ssh/sshd_config",
  "sshd-empty-passwords /etc/ssh/sshd_config",
  // Unset: OpenSSH's default is yes (low here: the fixture has no UsePAM yes).
  "sshd-kbd-interactive /etc/ssh/sshd_config",
  "ssh-host-key /etc/ssh/ssh_host_ed25519_key",
  "machine-id /etc/machine-id",
  "cloud-init-state /var/lib/cloud/instances",
  "temporary-files /tmp",
  // Found since an independent review: shapes the first version missed.
  "aws-credentials /root/admin_accessKeys.csv",
  "secret-assignment /srv/app/config.json",
  "secret-assignment /srv/app/config.json",
  "private-key /etc/cloud/user-data.yaml",
  "private-key /home/admin/.config/service-account.json",
  "secret-assignment /var/log/app/deploy.log",
  "private-key /root/keybackup.1",
  "secret-assignment /var/log/app/app.log.3.bz2",
  "aws-credentials /opt/app/big.conf",
].sort();

function put(root: string, path: string, content: string | Buffer, mode = 0o644): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

function sh(command: string, args: string[], input?: string): string {
  return execFileSync(command, args, { encoding: "latin1", ...(input === undefined ? {} : { input }), stdio: ["pipe", "pipe", "pipe"] });
}

/** A tree with one case per rule, made with the real tools (ssh-keygen, zstd). */
function makeTree(root: string, keys: string): void {
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "builder@ci", "-f", join(keys, "user")]);
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "hunter22", "-f", join(keys, "locked")]);
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(keys, "host")]);
  const userKey = readFileSync(join(keys, "user"), "latin1");
  const publicKey = readFileSync(join(keys, "user.pub"), "latin1");
  put(root, "/root/.ssh/authorized_keys", `# the builder\n${publicKey}`, 0o600);
  put(root, "/ProgramData/ssh/administrators_authorized_keys", publicKey);
  put(root, "/home/admin/.ssh/id_ed25519", userKey, 0o600);
  put(root, "/home/admin/.ssh/id_locked", readFileSync(join(keys, "locked")));
  put(root, "/home/admin/putty.ppk", `PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: ci\nPublic-Lines: 2\n${"QUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUNr\n".repeat(2)}`);
  put(root, "/opt/app/deploy.env", `AWS_ACCESS_KEY_ID=${keyId}\nAWS_SECRET_ACCESS_KEY=${secretKey}\n`);
  put(root, "/opt/app/notes.txt", `the deploy user is ${keyId}\n`);
  put(root, "/root/.aws/credentials", `[default]\naws_access_key_id = ${keyId}\naws_secret_access_key = ${secretKey}\n`, 0o600);
  put(root, "/home/admin/.docker/config.json", JSON.stringify({ auths: { "registry.example": { auth: Buffer.from(`ci:${dbPassword}`).toString("base64") } } }));
  put(root, "/home/admin/.git-credentials", `https://ci:${githubToken}@git.example\n`);
  put(root, "/home/admin/.netrc", `machine ftp.example login ci password ${dbPassword}\n`);
  put(root, "/home/admin/.pgpass", `db.example:5432:app:app:${dbPassword}\n`);
  put(root, "/srv/app/settings.yaml", `github:\n  token: ${githubToken}\n`);
  put(root, "/var/log/app/worker.log.1.zst", Buffer.from(sh("zstd", ["-q", "-c"], `started\nposting with ${slackToken}\n`), "latin1"));
  put(root, "/var/log/app/install.log.2.gz", gzipSync(`step 1\nmysql_password=${dbPassword}\nstep 2\n`));
  put(root, "/etc/app/db.conf", `[db]\nhost = db.example\ndb_password = ${dbPassword}\n# password = not-this-one\n`);
  put(root, "/root/.bash_history", "ls\ncurl -u ci https://example.invalid\n", 0o600);
  put(root, "/home/admin/.python_history", "import os\n");
  put(root, "/home/admin/.local/share/fish/fish_history", "- cmd: ls\n");
  put(root, "/Users/builder/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt", "Get-Process\n");
  put(root, "/etc/shadow", "root:$6$salt$0123456789abcdefABCDEF:20000:0:99999:7:::\ndaemon:*:20000::::::\nguest::20000::::::\nadmin:!:20000::::::\n", 0o640);
  put(root, "/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\nPermitEmptyPasswords yes\nPermitRootLogin no\n");
  put(root, "/etc/ssh/sshd_config.d/50-build.conf", "PermitRootLogin yes\n");
  put(root, "/etc/ssh/ssh_host_ed25519_key", readFileSync(join(keys, "host")), 0o600);
  put(root, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
  put(root, "/var/lib/cloud/instances/i-0123456789abcdef0/boot-finished", "done\n");
  put(root, "/tmp/build-leftover", "x\n");
  put(root, "/root/admin_accessKeys.csv", `Access key ID,Secret access key\n${keyId},${csvSecret}\n`);
  put(root, "/srv/app/config.json", JSON.stringify({ client_secret: clientSecret, db_password: dbPassword }));
  const pemKey = sh("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
  put(root, "/etc/cloud/user-data.yaml", `ssh_keys:\n  ecdsa_private: |\n${pemKey.trim().split("\n").map((l) => `    ${l}`).join("\n")}\n`);
  put(root, "/home/admin/.config/service-account.json", JSON.stringify({ type: "service_account", private_key: pemKey }));
  put(root, "/var/log/app/deploy.log", `mysql -u root --password=${dbPassword} -h db.internal\n`);
  put(root, "/root/keybackup.1", gzipSync(userKey));
  put(root, "/var/log/app/app.log.3.bz2", Buffer.from(sh("bzip2", ["-c"], `started\napi_password=${dbPassword}\n`), "latin1"));
  // The secret, then its key id just past the first 1 MiB - 16 KiB: the two meet across a stream round.
  const filler = "# filler line of a large configuration file\n";
  const head = `aws_secret_access_key = ${secretKey}\n`;
  put(root, "/opt/app/big.conf", `${filler.repeat(Math.floor((1024 * 1024 - 16 * 1024 - head.length - 200) / filler.length))}${head}aws_access_key_id = ${keyId}\n${filler.repeat(16000)}`);
  // Near misses, none of which is a finding.
  put(root, "/usr/share/doc/app/example.conf", "password = example-from-the-docs\n");
  put(root, "/etc/app/empty-keys/authorized_keys", "# no keys here\n");
  put(root, "/etc/nsswitch.conf", "passwd:         files\n");
  mkdirSync(join(root, "var/tmp"), { recursive: true });
}

const found = (findings: readonly Finding[]): string[] =>
  findings.map((f) => `${f.rule.id} ${f.location.kind === "file" ? f.location.path : `@${f.location.offset}`}`).sort();

describe("kiln audit (real fixtures: ssh-keygen, tar, zstd, mke2fs, sfdisk, debugfs, qemu-img)", { timeout: 5 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-audit-"));
  after(() => rm(dir, { recursive: true, force: true }));
  const tree = join(dir, "tree");
  const image = join(dir, "fs.raw");

  before(() => {
    const keys = join(dir, "keys");
    mkdirSync(keys);
    makeTree(tree, keys);
    sh("mke2fs", ["-q", "-t", "ext4", "-d", tree, image, "64M"]);
  });

  it("finds every rule in a directory tree, and nothing in the near misses", async () => {
    const result = await auditImage(tree, { failOn: "high" });
    assert.deepEqual(found(result.findings), expected);
    assert.equal(result.format, "directory");
  });

  it("finds the same in tar archives, plain, gzip and zstd", async () => {
    for (const [flag, name] of [["", "t.tar"], ["--gzip", "t.tar.gz"], ["--zstd", "t.tar.zst"]] as const) {
      const archive = join(dir, name);
      sh("tar", ["-C", tree, ...(flag === "" ? [] : [flag]), "-cf", archive, "."]);
      const result = await auditImage(archive, { failOn: "high" });
      assert.deepEqual(found(result.findings), expected, name);
    }
  });

  it("finds the same in a raw ext4 image, read without mounting", async () => {
    const result = await auditImage(image, { failOn: "high" });
    assert.deepEqual(found(result.findings), expected);
    assert.equal(result.format, "raw ext filesystem image");
  });

  it("finds the same in the ext4 partition of a GPT disk, and in its qcow2 form", async () => {
    const disk = join(dir, "disk.raw");
    sh("truncate", ["-s", "80M", disk]);
    sh("sfdisk", ["--quiet", disk], "label: gpt\nstart=2048, size=8192, type=uefi\nstart=10240, type=linux\n");
    sh("mke2fs", ["-q", "-t", "ext4", "-d", tree, "-E", `offset=${10240 * 512}`, disk, "60M"]);
    const result = await auditImage(disk, { failOn: "high" });
    assert.deepEqual(found(result.findings), expected);
    const qcow2 = join(dir, "disk.qcow2");
    sh("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", disk, qcow2]);
    assert.deepEqual(found((await auditImage(qcow2, { failOn: "high" })).findings), expected);
  });

  it("reports a secret deleted inside an image at its byte offset, and the deleted file's former name", async () => {
    const small = join(dir, "small-tree");
    put(small, "/etc/hostname", "kiln\n");
    put(small, "/root/gift.txt", `${deletedMarker}\naws_secret_access_key = ${secretKey}\n${"padding\n".repeat(600)}`);
    const dirty = join(dir, "dirty.raw");
    sh("mke2fs", ["-q", "-t", "ext4", "-d", small, dirty, "16M"]);
    sh("debugfs", ["-w", "-R", "rm /root/gift.txt", dirty]);

    const result = await auditImage(dirty, { failOn: "high" });
    const secret = result.findings.find((f) => f.rule.id === "deleted-secret");
    assert.ok(secret !== undefined && secret.location.kind === "raw", found(result.findings).join(", "));
    assert.equal(secret.location.area, "deleted-file");
    assert.equal(secret.location.formerPath, "/root/gift.txt");
    const bytes = await readAt(dirty, secret.location.offset, 64);
    assert.match(bytes, /^aws_secret_access_key = /, "the offset points at the secret");
    const deleted = result.findings.find((f) => f.rule.id === "deleted-file");
    assert.ok(deleted?.location.kind === "raw" && deleted.location.formerPath === "/root/gift.txt", "the deleted file is named");
    for (const f of result.findings) assert.ok(!JSON.stringify(f).includes(secretKey.slice(0, 10)), "no secret in a finding");

    // The same tree written fresh has nothing to recover.
    const fresh = join(dir, "fresh.raw");
    const cleanTree = join(dir, "clean-tree");
    put(cleanTree, "/etc/hostname", "kiln\n");
    mkdirSync(join(cleanTree, "root"), { recursive: true });
    sh("mke2fs", ["-q", "-t", "ext4", "-d", cleanTree, fresh, "16M"]);
    assert.deepEqual(found((await auditImage(fresh, { failOn: "high" })).findings), []);
  });

  it("reports a secret in free blocks no inode ever described as unallocated space", async () => {
    const clean = join(dir, "free.raw");
    const small = join(dir, "free-tree");
    put(small, "/etc/hostname", "kiln\n");
    sh("mke2fs", ["-q", "-t", "ext4", "-d", small, clean, "16M"]);
    const offset = 12 * 1024 * 1024 + 100; // far past the few blocks the tree uses
    const handle = await open(clean, "r+");
    await handle.write(Buffer.from(`old config\ndb_password = ${dbPassword}\n`), 0, undefined, offset);
    await handle.close();
    const result = await auditImage(clean, { failOn: "high" });
    assert.deepEqual(found(result.findings), [`deleted-secret @${offset + "old config\ndb_".length}`]);
    assert.equal(result.findings[0]?.location.kind === "raw" && result.findings[0].location.area, "unallocated");
  });

  it("finds a secret in inline data, split between the inode and its xattr", async () => {
    const small = join(dir, "inline-tree");
    put(small, "/etc/app/split.conf", `${"#".repeat(50)}\nsmtp_password = ${dbPassword}\n`);
    const inline = join(dir, "inline.raw");
    sh("mke2fs", ["-q", "-t", "ext4", "-O", "inline_data", "-d", small, inline, "16M"]);
    assert.deepEqual(found((await auditImage(inline, { failOn: "high" })).findings), ["secret-assignment /etc/app/split.conf"]);
  });

  it("CLI: exit 1 with findings, 0 when accepted by a baseline or below --fail-on, 2 on bad input; JSON and SARIF", async () => {
    const text = await runKiln(["audit", image]);
    for (const secret of [keyId.slice(4), secretKey, githubToken.slice(4), slackToken.slice(5), dbPassword, csvSecret.slice(0, 12), clientSecret]) assert.ok(!text.stdout.includes(secret), `no secret in the text report (${secret.slice(0, 3)}…)`);
    const failing = await runKiln(["audit", image, "--json", "--sarif", join(dir, "report.sarif")]);
    assert.equal(failing.code, 1, failing.stderr);
    const report = JSON.parse(failing.stdout) as { findings: unknown[]; passed: boolean };
    assert.equal(report.findings.length, expected.length);
    assert.equal(report.passed, false);
    const sarif = JSON.parse(await readFile(join(dir, "report.sarif"), "utf8")) as { version: string; runs: { results: unknown[] }[] };
    assert.equal(sarif.version, "2.1.0");
    assert.equal(sarif.runs[0]?.results.length, expected.length);
    for (const text of [failing.stdout, await readFile(join(dir, "report.sarif"), "utf8")]) {
      for (const secret of [keyId.slice(4), secretKey, githubToken.slice(4), slackToken.slice(5), dbPassword, csvSecret.slice(0, 12), clientSecret]) assert.ok(!text.includes(secret), `no secret printed (${secret.slice(0, 3)}…)`);
    }

    const baseline = join(dir, "baseline.yaml");
    const entries = expected.map((e) => e.split(" ")).map(([rule, path]) => `  - {rule: ${rule}, path: "${path}", reason: accepted for the test}`);
    await writeFile(baseline, `accept:\n${[...new Set(entries)].join("\n")}\n`);
    const accepted = await runKiln(["audit", image, "--baseline", baseline]);
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);

    const onlyCritical = await runKiln(["audit", join(dir, "t.tar"), "--fail-on", "critical"]);
    assert.equal(onlyCritical.code, 1);
    const cleanDir = join(dir, "clean-tree");
    assert.equal((await runKiln(["audit", cleanDir])).code, 0);

    const random = join(dir, "random.bin");
    await writeFile(random, Buffer.alloc(1 << 20, 7));
    const truncated = join(dir, "truncated.raw");
    await writeFile(truncated, (await readFile(image)).subarray(0, 4 << 20));
    for (const [path, code] of [[join(dir, "missing.raw"), "no such file"], [random, "KILN_AUDIT_UNKNOWN_FORMAT"], [truncated, "incomplete"]] as const) {
      const bad = await runKiln(["audit", path]);
      assert.equal(bad.code, 2, `${path}: ${bad.stderr}`);
      assert.doesNotMatch(bad.stderr, /\n\s+at /, "no stack trace");
      assert.equal(bad.stderr.split("\n").filter((l) => l.startsWith("error: ")).length, 1, bad.stderr);
      if (code !== "KILN_AUDIT_UNKNOWN_FORMAT") assert.match(bad.stderr, new RegExp(code));
    }
  });
});

async function readAt(file: string, offset: number, length: number): Promise<string> {
  const handle = await open(file, "r");
  try {
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, offset);
    return buffer.toString("latin1");
  } finally {
    await handle.close();
  }
}
