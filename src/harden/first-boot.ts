import type { HardenConfig } from "../template/schema.js";

/** Where the hardening step installs kiln's first-boot service in the image. */
export const firstBootPaths = {
  script: "/usr/local/sbin/kiln-first-boot",
  config: "/etc/kiln/first-boot.conf",
  unit: "/etc/systemd/system/kiln-first-boot.service",
  state: "/var/lib/kiln/first-boot.instance",
  /** The launch key it added last: removed again when another instance boots from the same disk. */
  addedKey: "/var/lib/kiln/first-boot.key",
} as const;

/**
 * kiln's first-boot service, a POSIX sh script installed unchanged into every image that has
 * no cloud-init (seed 003, seed 000's fingerprints). Once per instance, keyed by the instance
 * id from the metadata service (an image made from an instance of itself runs it again):
 * fresh host keys, their fingerprints and public keys printed to the console in cloud-init's
 * block format (the amazon-ebs builder pins them), the launch key appended to the key user's
 * authorized_keys, root's password randomized unless it is locked. IMDSv2 (a token from a
 * PUT) is used; IMDSv1 only when the configuration allows it. It retries while the network
 * comes up. Settings come from the configuration file, so the script itself never changes.
 */
export const firstBootScript = `#!/bin/sh
# kiln first boot: installed by kiln's hardening step; settings in ${firstBootPaths.config}.
set -u
KEY_USER=root
IMDS=http://169.254.169.254
IMDS_V1_FALLBACK=no
ATTEMPTS=60
DELAY=2
FRESH_HOST_KEYS=yes
GROW_ROOT=no
STATE=${firstBootPaths.state}
ADDED_KEY=${firstBootPaths.addedKey}
CONF=\${KILN_FIRST_BOOT_CONF:-${firstBootPaths.config}}
[ -r "$CONF" ] && . "$CONF"

log() { echo "kiln-first-boot: $*"; }
work=$(mktemp -d /tmp/kiln-first-boot.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT

# The root partition and filesystem grow into a disk larger than the image (kiln's partitioned
# disks set GROW_ROOT). Every boot: a no-op once they fill the disk.
grow_root() {
  src=$(findmnt -n -o SOURCE / 2>/dev/null) || { log "cannot grow the root partition: no findmnt"; return 0; }
  name=\${src##*/}
  [ -r "/sys/class/block/$name/partition" ] || return 0
  part=$(cat "/sys/class/block/$name/partition")
  disk=/dev/$(basename "$(readlink -f "/sys/class/block/$name/..")")
  start=$(cat "/sys/class/block/$name/start"); size=$(cat "/sys/class/block/$name/size"); total=$(cat "/sys/class/block/\${disk##*/}/size")
  # Less than 2 MiB past the partition (the backup GPT, alignment): nothing to grow into.
  [ $((total - start - size)) -gt 4096 ] || return 0
  if command -v growpart >/dev/null 2>&1; then
    if ! out=$(growpart "$disk" "$part" 2>&1); then log "growpart $disk $part failed: $out"; return 0; fi
    log "grew $src to the end of $disk (growpart)"
  elif command -v sfdisk >/dev/null 2>&1 && command -v partx >/dev/null 2>&1; then
    sfdisk --relocate gpt-bak-std "$disk" >/dev/null 2>&1
    if ! echo ", +" | sfdisk --no-reread --no-tell-kernel -N "$part" "$disk" >/dev/null 2>&1 || ! partx -u -n "$part" "$disk"; then log "sfdisk could not grow $src"; return 0; fi
    log "grew $src to the end of $disk (sfdisk; kiln does it: the image has no growpart)"
  else
    log "cannot grow the root partition into the larger disk: neither growpart (cloud-guest-utils) nor sfdisk (fdisk) is in the image"; return 0
  fi
  if resize2fs "$src" >/dev/null 2>&1; then log "resized the root filesystem to fill $src"; else log "resize2fs $src failed"; fi
}
[ "$GROW_ROOT" = yes ] && grow_root

# request METHOD PATH [HEADER]: the body into $work/body, the HTTP status into $status (000: no answer).
request() {
  : > "$work/body"
  if command -v curl >/dev/null 2>&1; then
    status=$(curl -s -o "$work/body" -w '%{http_code}' --connect-timeout 2 --max-time 5 -X "$1" \${3:+-H "$3"} "$IMDS$2") || status=000
  elif wget --help 2>&1 | grep -q -- --method; then
    status=$(wget -q -S -O "$work/body" --timeout=5 --tries=1 --method="$1" \${3:+--header="$3"} "$IMDS$2" 2>&1 | awk '/^ *HTTP\\//{c=$2} END{print c}')
    [ -n "$status" ] || status=000
  else
    status=none
  fi
}

token=""
get() {
  if [ -n "$token" ]; then request GET "$1" "X-aws-ec2-metadata-token: $token"; else request GET "$1"; fi
}

# A session token (IMDSv2), retried while the network comes up.
reached=no
i=0
while [ "$i" -lt "$ATTEMPTS" ]; do
  i=$((i + 1))
  request PUT /latest/api/token "X-aws-ec2-metadata-token-ttl-seconds: 300"
  case "$status" in
    none) log "neither curl nor GNU wget is installed: cannot ask the metadata service"; break ;;
    200) token=$(cat "$work/body"); reached=yes; break ;;
    000) sleep "$DELAY" ;;
    *)
      reached=yes
      if [ "$IMDS_V1_FALLBACK" = yes ]; then log "no IMDSv2 token (HTTP $status): using IMDSv1, as configured"
      else log "no IMDSv2 token (HTTP $status) and IMDSv1 is not allowed: no instance id, no key"; reached=refused; fi
      break ;;
  esac
done
[ "$reached" = no ] && [ "$status" = 000 ] && log "the metadata service did not answer after $ATTEMPTS attempts"

instance=""
if [ "$reached" = yes ]; then
  get /latest/meta-data/instance-id
  if [ "$status" = 200 ]; then instance=$(cat "$work/body"); else log "no instance id (HTTP $status)"; fi
fi
if [ -n "$instance" ] && [ -r "$STATE" ] && [ "$(cat "$STATE")" = "$instance" ]; then
  log "already ran for $instance: nothing to do"
  exit 0
fi

# Fresh host keys for a new instance (or, without an id, at least keys for sshd to start with).
if [ -n "$instance" ] && [ "$FRESH_HOST_KEYS" = yes ]; then rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub; fi
if command -v ssh-keygen >/dev/null 2>&1; then
  ssh-keygen -A >/dev/null && log "SSH host keys ready"
  echo "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
  for f in /etc/ssh/ssh_host_*_key.pub; do [ -r "$f" ] && ssh-keygen -l -f "$f"; done
  echo "-----END SSH HOST KEY FINGERPRINTS-----"
  echo "-----BEGIN SSH HOST KEY KEYS-----"
  for f in /etc/ssh/ssh_host_*_key.pub; do [ -r "$f" ] && cat "$f"; done
  echo "-----END SSH HOST KEY KEYS-----"
  # Without systemd (rc.local, local.d) sshd may have started first: it must serve these keys.
  if [ ! -d /run/systemd/system ]; then
    if command -v rc-service >/dev/null 2>&1; then rc-service sshd restart >/dev/null 2>&1 && log "restarted sshd with these keys"
    elif command -v service >/dev/null 2>&1; then { service ssh restart || service sshd restart; } >/dev/null 2>&1 && log "restarted sshd with these keys"
    elif [ -x /etc/init.d/ssh ]; then /etc/init.d/ssh restart >/dev/null 2>&1 && log "restarted sshd with these keys"
    fi
  fi
fi

# The launch key, into the key user's authorized_keys: once, with the modes sshd insists on.
# Asked again while the answer is neither the key (200) nor "no key pair" (404).
done_key=no
if [ "$reached" = yes ]; then
  i=0
  while :; do
    get /latest/meta-data/public-keys/0/openssh-key
    i=$((i + 1))
    case "$status" in 200|404) break ;; esac
    [ "$i" -lt 10 ] || break
    sleep "$DELAY"
  done
  key=$(head -n 1 "$work/body")
  case "$status" in 200|404) done_key=yes ;; esac
  if [ "$status" = 404 ]; then log "the instance was launched without a key pair: no key to add"
  elif [ "$status" != 200 ]; then log "could not fetch the launch key (HTTP $status)"
  else
    case "$key" in
      ssh-*|ecdsa-*|sk-*)
        entry=$(awk -F: -v u="$KEY_USER" '$1 == u { print $3 ":" $4 ":" $6 }' /etc/passwd)
        if [ -z "$entry" ]; then log "user $KEY_USER does not exist: key not added"
        else
          owner=\${entry%:*}; home=\${entry##*:}
          mkdir -p "$home/.ssh" && chmod 700 "$home/.ssh"
          touch "$home/.ssh/authorized_keys" && chmod 600 "$home/.ssh/authorized_keys"
          auth="$home/.ssh/authorized_keys"
          # The key this service added for an earlier instance goes: this one was launched with its own.
          if [ -r "$ADDED_KEY" ]; then
            earlier=$(head -n 1 "$ADDED_KEY")
            if [ -n "$earlier" ] && [ "$earlier" != "$key" ] && grep -qxF "$earlier" "$auth"; then
              grep -vxF "$earlier" "$auth" > "$work/keys" || :
              cat "$work/keys" > "$auth" && log "removed the launch key of the earlier instance from $auth"
            fi
          fi
          if grep -qxF "$key" "$auth"; then log "the launch key is already in $auth"
          else printf '%s\\n' "$key" >> "$auth" && log "added the launch key to $auth"; fi
          chown "$owner" "$home/.ssh" "$auth"
          mkdir -p "$(dirname "$ADDED_KEY")" && printf '%s\\n' "$key" > "$ADDED_KEY"
        fi ;;
      *) log "the metadata service's key is not an OpenSSH public key: not added" ;;
    esac
  fi
fi

# Defence in depth (seed 003): a root password that is not locked is replaced by a random one.
root_hash=$(awk -F: '$1 == "root" { print $2 }' /etc/shadow 2>/dev/null)
case "$root_hash" in
  '!'*|'*'*) ;;
  *)
    if command -v chpasswd >/dev/null 2>&1; then
      printf 'root:%s\\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \\n')" | chpasswd && log "randomized root's password"
    else
      sed -i 's/^root:\\([^!*]\\)/root:!\\1/' /etc/shadow && log "locked root's password (no chpasswd to randomize it)"
    fi ;;
esac

# Recorded only once the key question was answered: otherwise the next boot tries again.
if [ -n "$instance" ] && [ "$done_key" = yes ]; then
  mkdir -p "$(dirname "$STATE")" && printf '%s\\n' "$instance" > "$STATE"
  log "done for $instance"
elif [ -n "$instance" ]; then
  log "the launch key could not be fetched: the next boot tries again"
fi
exit 0
`;

/** Before sshd, after the network, once per boot (the script itself decides once per instance). */
export const firstBootUnit = `[Unit]
Description=kiln first boot: host keys, launch key from the metadata service
Wants=network-online.target
After=network-online.target
Before=ssh.service sshd.service
ConditionPathExists=${firstBootPaths.script}

[Service]
Type=oneshot
ExecStart=${firstBootPaths.script}
StandardOutput=journal+console
TimeoutStartSec=600

[Install]
WantedBy=multi-user.target
`;

/** The settings the script reads: shell assignments of values the schema has checked. */
export function firstBootConfig(harden: Pick<HardenConfig, "default_user" | "imds_v1_fallback" | "remove_host_keys">): string {
  // GROW_ROOT is added by the local builder's boot step, for the disks it partitions.
  return [
    "# kiln first-boot settings (written by kiln's hardening step)",
    `KEY_USER=${harden.default_user ?? "root"}`,
    `IMDS_V1_FALLBACK=${harden.imds_v1_fallback ? "yes" : "no"}`,
    `FRESH_HOST_KEYS=${harden.remove_host_keys ? "yes" : "no"}`,
    "",
  ].join("\n");
}

/** cloud-init, where the image has it, does the same: key-only root, host keys per instance. */
export function cloudInitConfig(harden: Pick<HardenConfig, "default_user">): string {
  const lines = [
    "# written by kiln's hardening step",
    "ssh_pwauth: false",
    "ssh_deletekeys: true",
    "ssh_fp_console_blacklist: []",
    "ssh_key_console_blacklist: []",
  ];
  if (harden.default_user !== undefined) {
    lines.push("system_info:", "  default_user:", `    name: ${harden.default_user}`, "    lock_passwd: true", "    sudo: [\"ALL=(ALL) NOPASSWD:ALL\"]", "    shell: /bin/bash");
  }
  return `${lines.join("\n")}\n`;
}
