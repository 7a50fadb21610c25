import { shellQuote as quote } from "../system/shell-quote.js";

/**
 * What must not ship in a shared image (seed 004): every user's shell and REPL histories, every
 * authorized_keys, SSH host keys (generated per instance at first boot), the machine id, the
 * build host's resolv.conf and hostname, apt lists and caches, logs, /tmp and /var/tmp, and
 * cloud-init's per-instance state. The same list runs in a chroot or over SSH.
 */
export const historyFiles = [
  ".bash_history", ".zsh_history", ".sh_history", ".ash_history", ".history", ".python_history",
  ".mysql_history", ".psql_history", ".sqlite_history", ".node_repl_history", ".irb_history",
  ".rediscli_history", ".lesshst", ".viminfo", ".local/share/fish/fish_history",
  ".config/fish/fish_history", ".local/share/powershell/PSReadLine/ConsoleHost_history.txt",
] as const;

export const authorizedKeyNames = ["authorized_keys", "authorized_keys2", "administrators_authorized_keys"] as const;

/** Paths (globs allowed) removed outright. */
export const removedPaths = [
  "/etc/ssh/ssh_host_*",
  "/var/lib/dbus/machine-id",
  "/etc/hostname",
  "/var/cache/apt/*.bin",
  "/var/lib/cloud/instances",
  "/var/lib/cloud/instance",
  "/var/lib/cloud/data",
  "/usr/sbin/policy-rc.d",
] as const;

/** Directories emptied (kept, since packages expect them); kiln's own running script removes itself. */
export const emptiedDirectories = ["/tmp", "/var/tmp"] as const;

/** Directories whose regular files are removed (subdirectories kept). */
export const filesRemovedUnder = ["/var/log", "/var/lib/apt/lists", "/var/cache/apt/archives"] as const;

/**
 * Host keys are removed, so an image with sshd must make new ones when it first boots, or
 * sshd will not start. cloud-init does it where present; otherwise a one-shot systemd unit.
 */
const hostKeyUnit = `[Unit]
Description=Generate SSH host keys for this instance (installed by kiln)
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service sshd.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`;
const hostKeysAtFirstBoot = [
  // cloud-init or kiln's own first-boot service (the hardening step's) make them where present.
  "if [ ! -x /usr/sbin/sshd ] || [ -e /usr/bin/cloud-init ] || [ -e /usr/local/sbin/kiln-first-boot ]; then :",
  "elif [ -x /lib/systemd/systemd ] || [ -x /usr/lib/systemd/systemd ]; then",
  "  mkdir -p /etc/systemd/system",
  `  printf '%s' '${hostKeyUnit}' > /etc/systemd/system/kiln-ssh-host-keys.service`,
  "  mkdir -p /etc/systemd/system/multi-user.target.wants",
  "  ln -sf ../kiln-ssh-host-keys.service /etc/systemd/system/multi-user.target.wants/kiln-ssh-host-keys.service",
  '  echo "added /etc/systemd/system/kiln-ssh-host-keys.service (new SSH host keys at first boot)"',
  "else",
  '  echo "warning: sshd has no host keys and nothing in this image makes them at boot (install systemd or cloud-init)"',
  "fi",
];

/**
 * One sh word that expands as the glob `path` and as nothing else: only the pattern characters
 * (`* ? [ ] ! ^ -`, harmless unquoted) stay bare; every other run is single-quoted, so `$(…)`,
 * backquotes, `~`, `$VAR` or a newline in a template's clean.paths stay literal characters.
 */
export function globWord(path: string): string {
  if (!/[*?[]/.test(path)) return quote(path);
  return path.replace(/[^*?[\]!^-]+/g, (literal) => quote(literal));
}

/**
 * A POSIX sh script that removes the clean list plus `extraPaths`, printing one
 * `removed PATH` / `emptied PATH` line for each thing it touched.
 */
export function cleanScript(extraPaths: readonly string[]): string {
  const lines = [
    "set -u",
    // Never into another filesystem mounted below a path (GNU rm can tell; BusyBox rm cannot).
    'rm_opts=-rf; rm --one-file-system -rf -- /nonexistent.kiln 2>/dev/null && rm_opts="-rf --one-file-system"',
    'remove() { for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then if rm $rm_opts -- "$p"; then echo "removed $p"; else echo "warning: could not remove all of $p (a filesystem mounted inside it?)"; fi; fi; done; }',
    // Every user's home, from the image's own passwd (service users included), and anything under /home.
    'homes=$( { echo /root; cut -d: -f6 /etc/passwd 2>/dev/null; for d in /home/*; do echo "$d"; done; } | sort -u)',
    "for h in $homes; do",
    '  [ -d "$h" ] && [ "$h" != / ] || continue',
    ...historyFiles.map((f) => `  remove "$h"/${quote(f)}`),
    "done",
    `find / -xdev \\( ${authorizedKeyNames.map((n) => `-name ${n}`).join(" -o ")} \\) \\( -type f -o -type l \\) -print | while IFS= read -r p; do remove "$p"; done`,
    `remove ${removedPaths.map(globWord).join(" ")}`,
    // The build host's resolv.conf is a file mmdebstrap copied in; a symlink (systemd-resolved) belongs to the image.
    '[ -L /etc/resolv.conf ] || remove /etc/resolv.conf',
    ...hostKeysAtFirstBoot,
    'if [ -s /etc/machine-id ]; then : > /etc/machine-id && echo "emptied /etc/machine-id"; fi',
    `for d in ${emptiedDirectories.join(" ")}; do [ -d "$d" ] && find "$d" -mindepth 1 -maxdepth 1 ! -name 'kiln-script-*' | while IFS= read -r p; do remove "$p"; done; done`,
    `for d in ${filesRemovedUnder.join(" ")}; do [ -d "$d" ] && find "$d" \\( -type f -o -type l \\) ! -name lock | while IFS= read -r p; do remove "$p"; done; done`,
    ...(extraPaths.length === 0 ? [] : [`remove ${extraPaths.map(globWord).join(" ")}`]),
    "exit 0",
  ];
  return `${lines.join("\n")}\n`;
}
