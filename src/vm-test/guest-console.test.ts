import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirectory } from "../../test/helpers/temp.js";
import { bootFailure, ConsoleTail, printable, printedHostKeys } from "./guest-console.js";

/** Real host keys, and the console text kiln's first-boot service prints for them under systemd. */
async function consoleFor(dir: string): Promise<{ text: string; fingerprints: string[] }> {
  const lines: string[] = [];
  const fingerprints: string[] = [];
  for (const type of ["ed25519", "ecdsa"]) {
    const key = join(dir, `ssh_host_${type}_key`);
    execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "root@localhost", "-f", key]);
    const listed = execFileSync("ssh-keygen", ["-l", "-f", `${key}.pub`], { encoding: "utf8" }).trim();
    fingerprints.push(listed.split(" ")[1] ?? "");
    lines.push(listed);
  }
  const pubs = await Promise.all(["ed25519", "ecdsa"].map((t) => readFile(join(dir, `ssh_host_${t}_key.pub`), "utf8")));
  const prefix = (n: number): string => `[   ${(21 + n / 100).toFixed(6)}] kiln-first-boot[${238 + n}]: `;
  const text = [
    "\x1b[0m\x1b[H\x1b[J[    0.000000] Linux version 6.1.0-28-cloud-amd64",
    `localhost login: ${prefix(0)}-----BEGIN SSH HOST KEY FINGERPRINTS-----`,
    ...lines.map((l, i) => `${prefix(i + 1)}${l}`),
    `${prefix(3)}-----END SSH HOST KEY FINGERPRINTS-----`,
    `${prefix(4)}-----BEGIN SSH HOST KEY KEYS-----`,
    ...pubs.map((p, i) => `${prefix(i + 5)}${p.trim()}\r`),
    `${prefix(7)}-----END SSH HOST KEY KEYS-----`,
    "",
  ].join("\n");
  return { text, fingerprints };
}

describe("the guest's console", () => {
  it("yields the printed host keys' fingerprints, through systemd prefixes, escapes and a login prompt on the same line", async () => {
    const { text, fingerprints } = await consoleFor(await tempDirectory("kiln-console-"));
    const keys = printedHostKeys(text);
    assert.deepEqual(keys?.fingerprints.sort(), [...fingerprints].sort(), "computed from the keys themselves");
    assert.deepEqual(keys?.listed.sort(), [...fingerprints].sort(), "and listed in the FINGERPRINTS block");
    assert.equal(printedHostKeys(text.slice(0, text.indexOf("-----END SSH HOST KEY KEYS"))), undefined, "nothing until the block has ended");
  });

  it("takes the last complete block: a second boot's keys, not the first's", async () => {
    const first = await consoleFor(await tempDirectory("kiln-console-"));
    const second = await consoleFor(await tempDirectory("kiln-console-"));
    assert.deepEqual(printedHostKeys(first.text + second.text)?.fingerprints.sort(), [...second.fingerprints].sort());
  });

  it("names why a boot cannot reach a login", () => {
    assert.match(bootFailure("GNU GRUB\nerror: file `/vmlinuz' not found.\nerror: you need to load the kernel first.\n") ?? "", /GRUB could not load the kernel: the console says "error: file `\/vmlinuz' not found\."/);
    assert.match(bootFailure("SeaBIOS\nBooting from Hard Disk...\nBoot failed: not a bootable disk\n\nNo bootable device.") ?? "", /firmware found nothing to boot/);
    assert.match(bootFailure("BdsDxe: No bootable option or device was found.") ?? "", /firmware found nothing to boot/);
    assert.match(bootFailure("Linux version 6.1\n[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n") ?? "", /kernel panicked.*Unable to mount root fs/);
    assert.match(bootFailure("Linux version 6.1\nGave up waiting for root file system device.  Common problems:\nALERT!  PARTUUID=x does not exist.  Dropping to a shell!") ?? "", /did not find the root filesystem/);
    assert.match(bootFailure("Linux version 6.1\nYou are in emergency mode. After logging in, type") ?? "", /emergency mode/);
    // A program's "error:" after the kernel started is not GRUB's.
    assert.equal(bootFailure("Linux version 6.1\nerror: something a program printed at the start of a line\n"), undefined);
    assert.equal(bootFailure("Linux version 6.1\nlocalhost login: "), undefined);
  });
});

describe("the console kiln keeps while it watches a boot", () => {
  it("keeps only its tail however much the guest prints, and still knows the kernel started", () => {
    const console = new ConsoleTail(64 * 1024);
    console.append("GRUB loading.\n[    0.000000] Linux version 6.1.0-28-cloud-amd64\n");
    const flood = `${"A".repeat(1023)}\n`;
    for (let i = 0; i < 4096; i += 1) console.append(flood);
    assert.ok(console.text.length <= 64 * 1024, `${console.text.length} characters kept`);
    assert.ok(console.kernelStarted);
    // A service's "error: ..." line after the kernel started is not GRUB failing, even once the kernel's line is gone.
    console.append("error: something in user space\n");
    assert.equal(bootFailure(console.text, console.kernelStarted), undefined);
    assert.match(bootFailure("error: file `/vmlinuz' not found.\n") ?? "", /GRUB could not load the kernel/);
  });
});

describe("guest text on this machine's terminal", () => {
  // OSC 52 writes the terminal's clipboard; others set its title or answer back as typed input.
  // eslint-disable-next-line no-control-regex
  const control = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
  const hostile = "error: \x1b]52;c;Y3VybCBldmlsLmV4YW1wbGV8c2g=\x07 \x1bP+q544e\x1b\\ \x9b6n \x07\x08done";

  it("names a boot failure without the guest's terminal controls", () => {
    const said = bootFailure(`${hostile}\n`) ?? "";
    assert.match(said, /GRUB could not load the kernel/);
    assert.doesNotMatch(said, control, JSON.stringify(said));
    assert.match(said, /done/);
  });

  it("keeps printable text, tabs and newlines, and drops every control character and escape sequence", () => {
    assert.equal(printable("SHA256:abc/+= ok\tü\n"), "SHA256:abc/+= ok\tü\n");
    assert.doesNotMatch(printable(hostile), control);
  });
});
