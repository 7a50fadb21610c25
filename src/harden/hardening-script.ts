import { shellQuote as quote } from "../system/shell-quote.js";
import type { HardenConfig } from "../template/schema.js";
import { cloudInitConfig, firstBootConfig, firstBootPaths, firstBootScript, firstBootUnit } from "./first-boot.js";

/** The sshd settings of a shared image (seed 003): key-only, root by key at most, no DNS lookups. */
export function sshdSettings(harden: Pick<HardenConfig, "permit_root_login">): string[] {
  return [
    `PermitRootLogin ${harden.permit_root_login}`,
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitEmptyPasswords no",
    "UseDNS no",
  ];
}

/**
 * awk over sshd's files: each line inside a Match block (a Match ends with its file) that sets
 * a password or root login setting to yes, as sshd reads it (any case, quotes, `=`, a CR).
 */
const matchSaysYes = [
  "FNR == 1 { inmatch = 0 }",
  '{ line = tolower($0); sub(/\r$/, "", line); sub(/^[ \t]+/, "", line) }',
  "line ~ /^match([ \t=]|$)/ { inmatch = 1; next }",
  'inmatch && line ~ /^"?(permitrootlogin|passwordauthentication|kbdinteractiveauthentication|challengeresponseauthentication|skeyauthentication|permitemptypasswords)"?([ \t]*=[ \t]*|[ \t]+)"?yes"?([ \t#]|$)/ { printf "%s%s: %s", sep, FILENAME, line; sep = "; " }',
].join("\n");

/** Connections the image's sshd -T is asked about: root, the default user and someone else. */
const nonRootUser = "kiln-check";
const checkHost = "203.0.113.1";
// The one value of each that is not key-only (ChallengeResponseAuthentication before OpenSSH 8.7).
const weakSettings = '$2 == "yes" && ($1 == "permitrootlogin" || $1 == "passwordauthentication" || $1 == "kbdinteractiveauthentication" || $1 == "challengeresponseauthentication" || $1 == "permitemptypasswords") { printf "%s %s %s", sep, $1, $2; sep = "," }';

export const sshdDropIn = "/etc/ssh/sshd_config.d/00-kiln-hardening.conf";
const begin = "# BEGIN kiln hardening (first match wins, so these come first)";
const end = "# END kiln hardening";

/** A file written by a quoted here-document: nothing in it is expanded. Never indent these lines. */
function writeFile(path: string, content: string, mode: string): string[] {
  const marker = "KILN_FILE_END_7f3a";
  if (content.includes(marker)) throw new Error(`${path}: content contains the here-document marker`);
  return [`cat > ${quote(path)} <<'${marker}'`, content.replace(/\n$/, ""), marker, `chmod ${mode} ${quote(path)}`];
}

/**
 * A POSIX sh script, run as root in the target (a chroot, or a build instance over SSH), that
 * hardens it for sharing. It prints one line per change, `warning: …` for what it could not do
 * safely, and fails (exit 1, the reason on stderr) when asked for something impossible.
 */
export function hardeningScript(harden: HardenConfig): string {
  const settings = sshdSettings(harden);
  const keywords = [...settings.map((s) => (s.split(" ")[0] ?? "").toLowerCase()), "challengeresponseauthentication", "skeyauthentication"];
  const checkedUsers = ["root", ...(harden.default_user === undefined ? [] : [harden.default_user]), nonRootUser];
  const lines: string[] = [
    "set -u",
    'fail() { echo "$*" >&2; exit 1; }',
    "work=$(mktemp -d /tmp/kiln-harden.XXXXXX) || exit 1",
    "trap 'rm -rf \"$work\"' EXIT",
  ];

  // 1. The default user first, so that its password is locked with everyone else's.
  if (harden.default_user !== undefined) {
    const user = quote(harden.default_user);
    lines.push(
      `u=${user}`,
      'if ! grep -q "^$u:" /etc/passwd; then',
      "  shell=/bin/sh; [ -x /bin/bash ] && shell=/bin/bash",
      '  if command -v useradd >/dev/null 2>&1; then useradd --create-home --shell "$shell" --user-group "$u" || fail "useradd $u failed"',
      '  elif command -v adduser >/dev/null 2>&1; then adduser -D -s "$shell" "$u" || fail "adduser $u failed"',
      '  else fail "cannot create user $u: the image has neither useradd nor adduser"; fi',
      '  echo "created user $u"',
      "fi",
      'if [ -d /etc/sudoers.d ]; then',
      `  printf '%s ALL=(ALL) NOPASSWD:ALL\\n' "$u" > "/etc/sudoers.d/90-kiln-$u" && chmod 440 "/etc/sudoers.d/90-kiln-$u"`,
      '  if command -v visudo >/dev/null 2>&1 && ! visudo -cqf "/etc/sudoers.d/90-kiln-$u"; then fail "visudo rejects /etc/sudoers.d/90-kiln-$u"; fi',
      '  echo "gave $u passwordless sudo (/etc/sudoers.d/90-kiln-$u)"',
      "else",
      '  echo "warning: sudo is not installed, so $u cannot become root: add sudo to the image\'s packages"',
      "fi",
    );
  }

  // 2. Passwords: root's locked whatever it is, every other usable or empty one too.
  if (harden.lock_passwords) {
    const keep = ` ${harden.keep_passwords.join(" ")} `;
    lines.push(
      // Without PAM, sshd refuses even key logins to a !-locked account: the user the launch key
      // goes to is then locked with * (no password can match it either).
      "nopam=0",
      "if [ -f /etc/ssh/sshd_config ] && ! cat /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf 2>/dev/null | grep -Eiq '^[[:space:]]*UsePAM[[:space:]]+yes'; then nopam=1; fi",
      "if [ -f /etc/shadow ]; then",
      `  awk -F: -v OFS=: -v keep=${quote(keep)} -v keyuser=${quote(harden.default_user ?? "root")} -v nopam="$nopam" -v report="$work/report" '`,
      '    NF > 1 && index(keep, " " $1 " ") == 0 && nopam == 1 && $1 == keyuser {',
      '      if ($2 != "*") { $2 = "*"; print "locked the password of " $1 " with * (sshd here does not use PAM and would refuse its key if it were !)" > report }',
      "      print; next",
      "    }",
      '    NF > 1 && index(keep, " " $1 " ") == 0 {',
      '      if ($2 == "") { $2 = "!"; print "locked the empty password of " $1 > report }',
      '      else if ($1 == "root" && substr($2, 1, 1) != "!") { $2 = "!" $2; print "locked the password of root" > report }',
      '      else if ($2 !~ /^[!*]/) { $2 = "!" $2; print "locked the password of " $1 > report }',
      "    }",
      "    { print }' /etc/shadow > \"$work/shadow\" || fail \"could not read /etc/shadow\"",
      // cat > keeps the file's owner, mode and inode.
      '  cat "$work/shadow" > /etc/shadow',
      '  [ -f "$work/report" ] && cat "$work/report"',
      "fi",
      `awk -F: -v OFS=: -v keep=${quote(keep)} -v report="$work/report-passwd" 'NF > 1 && $2 == "" && index(keep, " " $1 " ") == 0 { $2 = "!"; print "locked the empty password of " $1 " in /etc/passwd" > report } { print }' /etc/passwd > "$work/passwd" && cat "$work/passwd" > /etc/passwd`,
      '[ -f "$work/report-passwd" ] && cat "$work/report-passwd"',
    );
  }

  // 3. sshd: our settings first in the main file (and a drop-in where the main file includes
  // them), earlier kiln blocks and conflicting top-level lines commented out; then `sshd -t`.
  if (harden.sshd) {
    const block = [begin, ...settings, end].join("\n");
    lines.push(
      "config=/etc/ssh/sshd_config",
      'if [ -f "$config" ]; then',
      `  awk -v keys=${quote(keywords.join(" "))} '`,
      '    BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) want[k[i]] = 1 }',
      // (begin and end hold no quote of either kind)
      `    $0 == "${begin}" { skip = 1; next }`,
      `    skip { if ($0 == "${end}") skip = 0; next }`,
      "    tolower($1) == \"match\" { inmatch = 1 }",
      '    { word = tolower($1); sub(/=.*/, "", word) }',
      '    !inmatch && (word in want) { print "# kiln: " $0; next }',
      "    { print }' \"$config\" > \"$work/sshd_config\" || fail \"could not read $config\"",
      `  { printf '%s\\n' ${quote(block)}; cat "$work/sshd_config"; } > "$config"`,
      `  echo "sshd: ${settings.join(", ")} (first in $config)"`,
      `  if [ -d /etc/ssh/sshd_config.d ] && grep -Eiq '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\\.d/' "$config"; then`,
      ...writeFile(sshdDropIn, `${settings.join("\n")}\n`, "644"),
      `    echo "sshd: the same in ${sshdDropIn}"`,
      "  fi",
      "  sshd=$(command -v sshd || echo /usr/sbin/sshd)",
      '  if [ -x "$sshd" ] && command -v ssh-keygen >/dev/null 2>&1; then',
      // A throwaway host key: the image's own are removed, and sshd -t wants one.
      '    ssh-keygen -q -t ed25519 -N "" -f "$work/check_key" >/dev/null || fail "ssh-keygen failed"',
      "    made_run=no; [ -d /run/sshd ] || { mkdir -p /run/sshd && made_run=yes; }",
      '    "$sshd" -t -f "$config" -h "$work/check_key" 2> "$work/sshd-t"; status=$?',
      '    if [ "$status" -ne 0 ]; then [ "$made_run" = yes ] && rmdir /run/sshd; cat "$work/sshd-t" >&2; fail "the image\'s sshd -t rejects the hardened $config"; fi',
      '    echo "sshd -t: the hardened configuration is valid"',
      // What sshd does for a connection (Match blocks, Include) is what counts, not what kiln wrote.
      `    for who in ${checkedUsers.map(quote).join(" ")}; do`,
      `      spec="user=$who,host=${checkHost},addr=${checkHost}"`,
      '      if ! "$sshd" -T -f "$config" -h "$work/check_key" -C "$spec" > "$work/sshd-T" 2>&1; then [ "$made_run" = yes ] && rmdir /run/sshd; cat "$work/sshd-T" >&2; fail "the image\'s sshd -T -C $spec fails"; fi',
      `      weak=$(awk '${weakSettings}' "$work/sshd-T")`,
      '      if [ -n "$weak" ]; then [ "$made_run" = yes ] && rmdir /run/sshd; fail "sshd is not key-only for $spec: the image\'s sshd -T says$weak (a Match block or an included file overrides kiln\'s settings: remove it or set the value to no inside it)"; fi',
      "    done",
      '    [ "$made_run" = yes ] && rmdir /run/sshd',
      `    echo "sshd -T: key-only for ${checkedUsers.join(", ")} (connecting from ${checkHost})"`,
      "  else",
      '    echo "warning: no sshd to check the configuration with (sshd -t)"',
      "  fi",
      // sshd -T answers for the connections asked about only; a Match on any other address,
      // host, port or group that says yes would pass it. Any Match block saying yes is refused.
      `  weakmatch=$(awk ${quote(matchSaysYes)} "$config" /etc/ssh/sshd_config.d/*.conf 2>/dev/null)`,
      '  if [ -n "$weakmatch" ]; then fail "a Match block lets some connections in without a key: $weakmatch (remove it, or set the value to no inside it)"; fi',
      "else",
      '  echo "no $config: no sshd to harden"',
      "fi",
    );
  }

  // 4. Host keys: each instance makes its own at first boot.
  if (harden.remove_host_keys) {
    lines.push('for f in /etc/ssh/ssh_host_*; do [ -e "$f" ] && rm -f "$f" && echo "removed $f"; done');
  }

  // 5. Who gives each instance its launch key and host keys.
  lines.push(
    `mode=${harden.first_boot}`,
    'if [ "$mode" = auto ]; then if [ -e /usr/bin/cloud-init ] || [ -e /usr/local/bin/cloud-init ]; then mode=cloud-init; else mode=kiln; fi; fi',
    'case "$mode" in',
    "cloud-init)",
    "  mkdir -p /etc/cloud/cloud.cfg.d",
    ...writeFile("/etc/cloud/cloud.cfg.d/90-kiln-hardening.cfg", cloudInitConfig(harden), "644"),
    '  echo "first boot: cloud-init installs the launch key and new host keys (/etc/cloud/cloud.cfg.d/90-kiln-hardening.cfg)" ;;',
    "kiln)",
    "  client=no; command -v curl >/dev/null 2>&1 && client=yes; wget --help 2>&1 | grep -q -- --method && client=yes",
    '  if [ "$client" = no ]; then',
    `    [ ${quote(harden.first_boot)} = kiln ] && fail "first_boot: kiln needs curl or GNU wget in the image to reach the metadata service: add curl to the image's packages"`,
    '    echo "warning: the image has neither curl nor GNU wget, so kiln\'s first-boot service can make host keys but cannot fetch the launch key: add curl to the image\'s packages"',
    "  fi",
    `  mkdir -p ${quote(firstBootPaths.script.replace(/\/[^/]+$/, ""))} ${quote(firstBootPaths.config.replace(/\/[^/]+$/, ""))}`,
    ...writeFile(firstBootPaths.script, firstBootScript, "755"),
    ...writeFile(firstBootPaths.config, firstBootConfig(harden), "644"),
    `  rm -f ${quote(firstBootPaths.state)} ${quote(firstBootPaths.addedKey)}`,
    "  if [ -x /lib/systemd/systemd ] || [ -x /usr/lib/systemd/systemd ]; then",
    "    mkdir -p /etc/systemd/system/multi-user.target.wants",
    ...writeFile(firstBootPaths.unit, firstBootUnit, "644"),
    "    ln -sf ../kiln-first-boot.service /etc/systemd/system/multi-user.target.wants/kiln-first-boot.service",
    `    echo "first boot: kiln's service (${firstBootPaths.unit}, before sshd)"`,
    "  elif [ -d /etc/local.d ]; then",
    ...writeFile("/etc/local.d/kiln-first-boot.start", `#!/bin/sh\nexec ${firstBootPaths.script}\n`, "755"),
    '    echo "first boot: kiln\'s service (/etc/local.d/kiln-first-boot.start)"',
    "  else",
    "    [ -f /etc/rc.local ] || printf '#!/bin/sh\\nexit 0\\n' > /etc/rc.local",
    `    if ! grep -q kiln-first-boot /etc/rc.local; then`,
    `      awk -v run=${quote(firstBootPaths.script)} '!done && /^[[:space:]]*exit[[:space:]]+0/ { print run; done = 1 } { print } END { if (!done) print run }' /etc/rc.local > "$work/rc.local" && cat "$work/rc.local" > /etc/rc.local`,
    "    fi",
    "    chmod 755 /etc/rc.local",
    '    echo "first boot: kiln\'s service (from /etc/rc.local: this image has no systemd)"',
    "  fi ;;",
    "none)",
    '  echo "first boot: none (the image must get its launch key and host keys some other way)" ;;',
    "esac",
    "exit 0",
  );
  return `${lines.join("\n")}\n`;
}
