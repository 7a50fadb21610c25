import { sshFingerprint } from "../communicator/openssh-key.js";

/** The host keys a boot printed on its console, as kiln's first-boot service (or cloud-init) prints them. */
export interface PrintedHostKeys {
  /** `SHA256:…` of each printed public key: what the SSH connection is pinned to. */
  fingerprints: string[];
  /** The `SHA256:…` values of the FINGERPRINTS block, which must agree with the keys. */
  listed: string[];
}

// eslint-disable-next-line no-control-regex
const escapes = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r/g;

// eslint-disable-next-line no-control-regex
const sequences = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][\s\S]*?(?:\x1b\\|$)|\x1b[\s\S]?|\x9b[0-?]*[ -/]*[@-~]?/g;
// eslint-disable-next-line no-control-regex
const controls = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/**
 * Guest text as this machine's terminal may show it (a check's detail, a console line): escape
 * sequences and control characters dropped, so a guest cannot set the clipboard or title, or
 * make the terminal answer as if typed. Tabs and newlines stay.
 */
export function printable(text: string): string {
  return text.replace(sequences, "").replace(controls, "");
}

/** The console as text: terminal escapes and carriage returns removed. */
export function plainConsole(text: string): string {
  return text.replace(escapes, "");
}

const keyLine = /\b(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) (AAAA[A-Za-z0-9+/]+={0,3})/g;

/**
 * The last complete host-key blocks on the console. Lines may carry a systemd or kernel prefix,
 * and a login prompt may share a line with them: keys are found by their own shape between the
 * block markers. Undefined until the KEYS block has ended.
 */
export function printedHostKeys(consoleText: string): PrintedHostKeys | undefined {
  const text = plainConsole(consoleText);
  const keys = lastBlock(text, "KEYS");
  if (keys === undefined) return undefined;
  const fingerprints = keyLines(keys).map((line) => sshFingerprint(Buffer.from(line.split(" ")[1] ?? "", "base64")));
  const listed = [...(lastBlock(text, "FINGERPRINTS") ?? "").matchAll(/\bSHA256:[A-Za-z0-9+/]{43}\b/g)].map((m) => m[0]);
  return { fingerprints: [...new Set(fingerprints)], listed: [...new Set(listed)] };
}

/** `TYPE BASE64` of each public key in a piece of console text. */
function keyLines(text: string): string[] {
  return [...text.matchAll(keyLine)].map((m) => `${m[1]} ${m[2]}`);
}

/** The public keys of the last complete KEYS block, as `TYPE BASE64` (a known_hosts line's end). */
export function printedKeyLines(consoleText: string): string[] {
  return keyLines(lastBlock(plainConsole(consoleText), "KEYS") ?? "");
}

function lastBlock(text: string, name: string): string | undefined {
  const end = text.lastIndexOf(`-----END SSH HOST KEY ${name}-----`);
  if (end < 0) return undefined;
  const begin = text.lastIndexOf(`-----BEGIN SSH HOST KEY ${name}-----`, end);
  return begin < 0 ? undefined : text.slice(begin, end);
}

/**
 * A console line that means this boot will not reach a login: the firmware found nothing to boot,
 * GRUB failed, the kernel panicked, the root filesystem was not found, systemd gave up.
 */
export function bootFailure(consoleText: string, kernelSeen = false): string | undefined {
  const text = plainConsole(consoleText);
  // Where the kernel's first line is; before all of this text when it started but was left behind.
  const linux = text.indexOf("Linux version") >= 0 ? text.indexOf("Linux version") : kernelSeen ? -1 : Infinity;
  const patterns: { pattern: RegExp; beforeLinux?: boolean; cause: string }[] = [
    // OVMF names the virtio disk's boot option "UEFI Misc Device"; it goes on to network boot for minutes.
    { pattern: /No bootable device|Boot failed: not a bootable disk|BdsDxe: No bootable option or device was found|BdsDxe: failed to load Boot[0-9A-F]+ "UEFI Misc Device[^"]*".*$/m, beforeLinux: true, cause: "the firmware found nothing to boot on the disk" },
    { pattern: /^error: .*$/m, beforeLinux: true, cause: "GRUB could not load the kernel" },
    { pattern: /Kernel panic - not syncing.*$/m, cause: "the kernel panicked" },
    { pattern: /ALERT! .* does not exist\..*$|Gave up waiting for root file system device.*$/m, cause: "the kernel did not find the root filesystem" },
    { pattern: /You are in emergency mode.*$|Give root password for maintenance.*$/m, cause: "systemd stopped in emergency mode" },
  ];
  for (const { pattern, beforeLinux, cause } of patterns) {
    const match = pattern.exec(text);
    if (match === null) continue;
    if (beforeLinux === true && match.index > linux) continue;
    return `${cause}: the console says "${printable(match[0]).trim().slice(0, 200)}"`;
  }
  return undefined;
}

/** Whether the kernel has started (its first line on the serial console). */
export function kernelStarted(consoleText: string): boolean {
  return consoleText.includes("Linux version");
}

/**
 * The console as kiln keeps it while it watches a boot: the last `limit` characters (a guest can
 * print without end, and the text is searched four times a second), and whether the kernel ever
 * started (its first line may have been left behind).
 */
export class ConsoleTail {
  text = "";
  kernelStarted = false;

  constructor(private readonly limit = 4 * 1024 * 1024) {}

  append(piece: string): void {
    const joined = this.text + piece;
    if (!this.kernelStarted && kernelStarted(joined)) this.kernelStarted = true;
    this.text = joined.length > this.limit ? joined.slice(-this.limit) : joined;
  }
}
