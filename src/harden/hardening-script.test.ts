import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../test/helpers/temp.js";
import { hardenDefaults, type HardenConfig } from "../template/schema.js";
import { hardeningScript } from "./hardening-script.js";

const sshd = "/usr/sbin/sshd";
const root = process.getuid?.() === 0;
// Only the sshd part: no users, passwords, host keys or first-boot service on this machine.
const sshdOnly: HardenConfig = { ...hardenDefaults, lock_passwords: false, remove_host_keys: false, first_boot: "none" };
const debianHead = "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n";

/**
 * The script as it runs in an image, with this machine's sshd as the image's: a scratch
 * /etc/ssh bind-mounted over the real one in a mount namespace of its own, and a private /run
 * (the script makes and removes /run/sshd, which an sshd of another test running beside it needs).
 */
async function hardenSshd(config: string, dropIns: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string; config: string }> {
  const etcSsh = await tempDirectory("kiln-harden-sshd-");
  await mkdir(join(etcSsh, "sshd_config.d"));
  await writeFile(join(etcSsh, "sshd_config"), config);
  for (const [name, content] of Object.entries(dropIns)) await writeFile(join(etcSsh, "sshd_config.d", name), content);
  await writeFile(join(etcSsh, "harden.sh"), hardeningScript(sshdOnly));
  const result = spawnSync("unshare", ["--mount", "--fork", "sh", "-c", 'mount --bind "$1" /etc/ssh && mount -t tmpfs tmpfs /run && exec sh /etc/ssh/harden.sh', "harden", etcSsh], { encoding: "utf8" });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, config: await readFile(join(etcSsh, "sshd_config"), "utf8") };
}

describe("hardening judges sshd by the image's own sshd -T", { skip: existsSync(sshd) && root ? false : "needs root and /usr/sbin/sshd (apt openssh-server)" }, () => {
  it("passes a stock configuration, with a harmless Match block, and says so", async () => {
    const result = await hardenSshd(`${debianHead}PasswordAuthentication yes\nMatch User sftp\n  ForceCommand internal-sftp\n`);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^sshd -T: key-only for root, kiln-check \(connecting from 203\.0\.113\.1\)$/m);
  });

  it("fails when Match all after kiln's settings re-enables root and passwords, naming both", async () => {
    const result = await hardenSshd(`${debianHead}Match all\n  PermitRootLogin yes\n  PasswordAuthentication yes\n`);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /sshd is not key-only for user=root,host=203\.0\.113\.1,addr=203\.0\.113\.1: the image's sshd -T says permitrootlogin yes, passwordauthentication yes \(a Match block/);
    assert.match(result.config, /^# BEGIN kiln hardening/, "kiln's settings were written: it is the Match block that wins");
  });

  it("fails for the user a Match block names (a drop-in's Match User kiln-check)", async () => {
    const result = await hardenSshd(debianHead, { "50-build.conf": "Match User kiln-check\n  KbdInteractiveAuthentication yes\n" });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /sshd is not key-only for user=kiln-check,[^:]*: the image's sshd -T says kbdinteractiveauthentication yes /);
  });

  it("fails for a Match on an address, host or port sshd -T was not asked about", async () => {
    const result = await hardenSshd(`${debianHead}Match Address *,!203.0.113.1\n  PermitRootLogin yes\n  PasswordAuthentication "YES"\r\n`);
    assert.equal(result.status, 1, result.stdout);
    assert.match(result.stderr, /a Match block lets some connections in without a key: \/etc\/ssh\/sshd_config: permitrootlogin yes; \/etc\/ssh\/sshd_config: passwordauthentication "yes"/);
  });

  it("reads SKeyAuthentication in a Match block as sshd does: keyboard-interactive login", async () => {
    const result = await hardenSshd(`${debianHead}Match Address 198.51.100.0/24\n  SKeyAuthentication yes\n`);
    assert.equal(result.status, 1, result.stdout);
    assert.match(result.stderr, /a Match block lets some connections in without a key: \/etc\/ssh\/sshd_config: skeyauthentication yes/);
  });

  it("asks about the default user too", () => {
    assert.match(hardeningScript({ ...sshdOnly, default_user: "admin" }), /for who in 'root' 'admin' 'kiln-check'; do/);
  });
});
