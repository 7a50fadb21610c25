import ssh2 from "ssh2";
import { sshFingerprint } from "../communicator/openssh-key.js";
import { SshCommunicator } from "../communicator/ssh-communicator.js";
import { CommandError } from "../system/command-error.js";
import { shellQuote } from "../system/shell-quote.js";

const { Client } = ssh2;

export interface CheckResult {
  name: string;
  passed: boolean;
  detail: string;
}

/** Runs one command over the connection as the login user; its output and exit status. */
export async function run(ssh: SshCommunicator, command: string, signal: AbortSignal): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  try {
    await ssh.runCommand(command, { what: "a test command", signal, onStdoutLine: (l) => out.push(l), onStderrLine: (l) => err.push(l) });
    return { code: 0, out, err };
  } catch (error) {
    if (error instanceof CommandError) return { code: error.exitCode ?? 255, out, err };
    throw error;
  }
}

/**
 * Every key any account would accept, as sshd would look for them: for every account in
 * /etc/passwd, the AuthorizedKeysFile patterns of the configuration sshd applies to that account
 * (`-C user=`, so Match blocks count; %h, %u, %U, %% expanded; relative to the home directory).
 * Printed as `FILE<TAB>KEYTYPE KEY`; and the options that would let in a key from elsewhere.
 */
const authorizedKeysScript = `set -u
awk -F: '{ print $1 ":" $3 ":" $6 }' /etc/passwd | while IFS=: read -r user uid home; do
  config=$(sshd -T -C "user=$user,host=kiln-test,addr=169.254.169.2" </dev/null 2>/dev/null) || config=$(sshd -T </dev/null 2>/dev/null) || config=""
  printf '%s\\n' "$config" | awk 'tolower($1) ~ /^(authorizedkeyscommand|trustedusercakeys|authorizedprincipalscommand)$/ && $2 != "none" { print "OPTION\\t" $0 }'
  files=$(printf '%s\\n' "$config" | awk 'tolower($1) == "authorizedkeysfile" { $1 = ""; print }')
  [ -n "$files" ] || files=".ssh/authorized_keys .ssh/authorized_keys2"
  for pattern in $files; do
    path=$(printf '%s' "$pattern" | sed -e "s|%%|\\x01|g" -e "s|%h|$home|g" -e "s|%u|$user|g" -e "s|%U|$uid|g" -e "s|\\x01|%|g")
    case "$path" in /*) ;; *) path="$home/$path" ;; esac
    [ -f "$path" ] || continue
    grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$path" | while IFS= read -r line; do printf '%s\\t%s\\n' "$path" "$line"; done
  done
done
`;

/** Only the key the metadata service served this boot is authorized, for any account. */
export async function onlyServedKeyAuthorized(ssh: SshCommunicator, servedKey: string, signal: AbortSignal): Promise<CheckResult> {
  const name = "only the served key is authorized";
  const { code, out, err } = await run(ssh, `sudo -n sh -c ${shellQuote(authorizedKeysScript)}`, signal);
  if (code !== 0) return { name, passed: false, detail: `could not list authorized keys (exit ${code}: ${err.at(-1) ?? ""})` };
  const served = keyBody(servedKey);
  const options = [...new Set(out.filter((l) => l.startsWith("OPTION\t")).map((l) => l.slice(7)))];
  const others = out.filter((l) => !l.startsWith("OPTION\t")).map((l) => l.split("\t")).filter(([, key]) => keyBody(key ?? "") !== served);
  const found = out.filter((l) => !l.startsWith("OPTION\t")).length;
  if (options.length > 0) return { name, passed: false, detail: `sshd also accepts keys from: ${options.join("; ")}` };
  if (others.length > 0) return { name, passed: false, detail: `${others.length} other key${others.length === 1 ? "" : "s"} authorized: ${others.map(([file, key]) => `${file} (${(key ?? "").split(/\s+/).find((w) => /^(ssh|ecdsa|sk)-/.test(w)) ?? "?"} …)`).join(", ")}` };
  if (found === 0) return { name, passed: false, detail: "the served key is in no authorized_keys file" };
  return { name, passed: true, detail: `1 key, the one served (in ${out.filter((l) => !l.startsWith("OPTION\t")).map((l) => l.split("\t")[0]).join(", ")})` };
}

/** The base64 body of an OpenSSH public key line, wherever it stands in the line (options may precede it). */
function keyBody(line: string): string | undefined {
  return /(?:^|\s)(AAAA[A-Za-z0-9+/]+={0,3})(?:\s|$)/.exec(line)?.[1];
}

/** root's password is locked (`!`/`*`), so no password can ever log in as root. */
export async function rootLocked(ssh: SshCommunicator, signal: AbortSignal): Promise<CheckResult> {
  const name = "root's password is locked";
  const { code, out } = await run(ssh, "sudo -n awk -F: '$1 == \"root\" { print substr($2, 1, 1) }' /etc/shadow", signal);
  const first = out[0] ?? "";
  if (code !== 0) return { name, passed: false, detail: `could not read /etc/shadow (exit ${code})` };
  return first === "!" || first === "*" ? { name, passed: true, detail: `/etc/shadow: root's hash starts with ${first}` } : { name, passed: false, detail: first === "" ? "root has an empty password" : "root has a usable password hash" };
}

/** The effective sshd configuration, for root and for the login user, is key-only. */
export async function sshdKeyOnly(ssh: SshCommunicator, user: string, signal: AbortSignal): Promise<CheckResult> {
  const name = "sshd's effective configuration is key-only";
  const problems: string[] = [];
  for (const who of [...new Set(["root", user])]) {
    const { code, out, err } = await run(ssh, `sudo -n sshd -T -C user=${who},host=kiln-test,addr=169.254.169.2`, signal);
    if (code !== 0) return { name, passed: false, detail: `sshd -T failed (exit ${code}: ${err.at(-1) ?? ""})` };
    const settings = new Map(out.map((l) => { const [k, ...v] = l.split(" "); return [k?.toLowerCase() ?? "", v.join(" ")]; }));
    const expect = (key: string, ok: (v: string) => boolean, want: string): void => {
      const value = settings.get(key) ?? "(unset)";
      if (!ok(value)) problems.push(`${key} ${value} for ${who} (want ${want})`);
    };
    expect("passwordauthentication", (v) => v === "no", "no");
    expect("kbdinteractiveauthentication", (v) => v === "no", "no");
    expect("permitemptypasswords", (v) => v === "no", "no");
    expect("pubkeyauthentication", (v) => v === "yes", "yes");
    expect("permitrootlogin", (v) => v !== "yes", "prohibit-password or no");
    // Neither a trusted host nor a Kerberos ticket is the user's key.
    expect("hostbasedauthentication", (v) => v === "no", "no");
    expect("gssapiauthentication", (v) => v === "no", "no");
  }
  return problems.length === 0 ? { name, passed: true, detail: "no password, no keyboard-interactive, no host-based or GSSAPI, root by key only (sshd -T for root and the login user)" } : { name, passed: false, detail: problems.join("; ") };
}

/**
 * A password login is tried, for root and for the login user, and must be refused: sshd offers
 * nothing but publickey after the `none` method, and a password sent anyway is rejected.
 */
export async function passwordRefused(host: string, port: number, users: readonly string[], pinned: readonly string[], signal: AbortSignal): Promise<CheckResult> {
  const name = "password login is refused";
  const results: string[] = [];
  for (const user of [...new Set(users)]) {
    const outcome = await tryPassword(host, port, user, pinned, signal);
    if (outcome.loggedIn) return { name, passed: false, detail: `a password login as ${user} succeeded` };
    const offered = outcome.offered.filter((m) => m !== "publickey");
    if (offered.length > 0) return { name, passed: false, detail: `sshd offers ${offered.join(", ")} to ${user}` };
    results.push(`${user}: refused, sshd offers ${outcome.offered.join(", ") || "nothing"}`);
  }
  return { name, passed: true, detail: results.join("; ") };
}

function tryPassword(host: string, port: number, user: string, pinned: readonly string[], signal: AbortSignal): Promise<{ loggedIn: boolean; offered: string[] }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let offered: string[] = [];
    let step = 0;
    const abort = (): void => { client.end(); reject(new Error("cancelled")); };
    signal.addEventListener("abort", abort, { once: true });
    const done = (loggedIn: boolean): void => { signal.removeEventListener("abort", abort); client.end(); resolve({ loggedIn, offered }); };
    client.on("ready", () => done(true));
    client.on("error", (error: Error & { level?: string }) => {
      if (error.level === "client-authentication") return done(false);
      signal.removeEventListener("abort", abort);
      reject(error);
    });
    client.connect({
      host, port, username: user, readyTimeout: 20_000,
      hostVerifier: (key: Buffer) => pinned.includes(sshFingerprint(key)),
      authHandler: (methodsLeft: string[] | null, _partial: boolean | null, next: (method: unknown) => void) => {
        step += 1;
        if (step === 1) return next({ type: "none", username: user });
        if (step === 2) {
          offered = methodsLeft ?? [];
          // Sent whatever sshd offers: a server that refuses it must refuse it here too.
          return next({ type: "password", username: user, password: "kiln-test-wrong-password" });
        }
        if (step === 3) return next({ type: "keyboard-interactive", username: user, prompt: (_n: string, _i: string, _l: string, prompts: unknown[], answer: (r: string[]) => void) => answer(prompts.map(() => "kiln-test-wrong-password")) });
        return next(false);
      },
    } as ssh2.ConnectConfig);
  });
}

/** The host keys sshd serves were made during this boot (after the kernel started). */
export async function hostKeysFresh(ssh: SshCommunicator, signal: AbortSignal): Promise<CheckResult> {
  const name = "the host keys were made at this boot";
  const { code, out } = await run(ssh, "sudo -n sh -c 'awk \"/^btime/ { print \\$2 }\" /proc/stat; for f in /etc/ssh/ssh_host_*_key; do [ -f \"$f\" ] && stat -c \"%Y %n\" \"$f\"; done'", signal);
  if (code !== 0 || out.length < 2) return { name, passed: false, detail: `could not read the host keys' times (exit ${code})` };
  const boot = Number(out[0]);
  const old = out.slice(1).map((l) => l.split(" ")).filter(([time]) => Number(time) < boot);
  return old.length === 0 ? { name, passed: true, detail: `${out.length - 1} host keys, all newer than this boot` } : { name, passed: false, detail: `older than this boot: ${old.map(([, f]) => f).join(", ")} (the image carried host keys)` };
}

/** The root filesystem fills the larger disk it was booted from. */
export async function rootGrown(ssh: SshCommunicator, minimumBytes: number, signal: AbortSignal): Promise<CheckResult> {
  const name = "the root filesystem grew into the larger disk";
  const { code, out } = await run(ssh, "df -B1 --output=size / | tail -n 1", signal);
  const size = Number(out[0]?.trim());
  if (code !== 0 || !Number.isFinite(size)) return { name, passed: false, detail: `could not read the root filesystem's size (exit ${code})` };
  const mib = (n: number): string => `${Math.round(n / 1024 / 1024)} MiB`;
  return size >= minimumBytes ? { name, passed: true, detail: `${mib(size)}, at least ${mib(minimumBytes)}` } : { name, passed: false, detail: `${mib(size)}, not at least ${mib(minimumBytes)}: first boot did not grow it (see the console log)` };
}
