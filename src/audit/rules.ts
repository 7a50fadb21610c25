/** How bad a finding is; `--fail-on` compares against this order. info: listed, never a leak (an exempt stock file). */
export const severities = ["info", "low", "medium", "high", "critical"] as const;
export type Severity = (typeof severities)[number];

export function atLeast(severity: Severity, threshold: Severity): boolean {
  return severities.indexOf(severity) >= severities.indexOf(threshold);
}

/** One thing that must never ship in a shared image, with what to do about it. */
export interface Rule {
  id: string;
  severity: Severity;
  title: string;
  fix: string;
}

const rule = (id: string, severity: Severity, title: string, fix: string): Rule => ({ id, severity, title, fix });

/** Every rule the audit knows, by id. Ids are stable: baselines and SARIF refer to them. */
export const rules = {
  authorizedKeys: rule("authorized-keys", "critical", "authorized_keys file with keys in it",
    "remove it before imaging; the launching user's key comes from the metadata service at first boot"),
  privateKey: rule("private-key", "critical", "private key",
    "remove the key from the image and rotate it: anyone who launches the image can read it"),
  encryptedPrivateKey: rule("encrypted-private-key", "high", "passphrase-protected private key",
    "remove the key from the image; its passphrase can be attacked offline by anyone who launches the image"),
  awsCredentials: rule("aws-credentials", "critical", "AWS access key with its secret",
    "deactivate the key in IAM, remove it from the image, and give instances an instance role instead"),
  awsKeyId: rule("aws-key-id", "medium", "AWS access key id without a secret nearby",
    "remove it; a key id names an account and a user even without its secret"),
  credentialsFile: rule("credentials-file", "critical", "credentials file with credentials in it",
    "remove the file and rotate what it holds; pass credentials at launch (user data, a secrets store) instead"),
  token: rule("token", "critical", "API token (GitHub, Slack)",
    "revoke the token and remove it from the image"),
  secretAssignment: rule("secret-assignment", "high", "password or secret set in a configuration or log file",
    "remove the value from the image and change it; supply it at launch instead"),
  shellHistory: rule("shell-history", "high", "shell or REPL history",
    "remove it; commands typed while building often carry passwords and keys"),
  passwordHash: rule("password-hash", "high", "user with a usable password",
    "lock the password (passwd -l, or '!' / '*' in /etc/shadow); log in with keys instead"),
  emptyPassword: rule("empty-password", "critical", "user with an empty password",
    "lock the account (passwd -l): an empty password lets anyone log in"),
  sshdRootLogin: rule("sshd-root-login", "high", "sshd allows root to log in with a password",
    "set PermitRootLogin prohibit-password (or no)"),
  sshdPasswordAuthentication: rule("sshd-password-authentication", "high", "sshd accepts passwords",
    "set PasswordAuthentication no"),
  sshdPasswordDefault: rule("sshd-password-default", "low", "sshd's PasswordAuthentication is not set (OpenSSH's default is yes)",
    "set PasswordAuthentication no explicitly"),
  sshdKbdInteractive: rule("sshd-kbd-interactive", "high", "sshd accepts keyboard-interactive logins (passwords through PAM)",
    "set KbdInteractiveAuthentication no"),
  sshdConfigUnread: rule("sshd-config-unread", "high", "sshd reads configuration the audit could not judge",
    "keep sshd's configuration under /etc (Include only files there, links only to files there)"),
  sshdEmptyPasswords: rule("sshd-empty-passwords", "critical", "sshd accepts empty passwords",
    "set PermitEmptyPasswords no"),
  sshHostKey: rule("ssh-host-key", "high", "SSH host key baked into the image",
    "remove /etc/ssh/ssh_host_*; generate host keys per instance at first boot"),
  machineId: rule("machine-id", "medium", "populated machine-id",
    "empty /etc/machine-id (leave the file, empty) so each instance gets its own"),
  cloudInitState: rule("cloud-init-state", "medium", "cloud-init instance state from the build",
    "run cloud-init clean (or remove /var/lib/cloud/instances) before imaging"),
  temporaryFiles: rule("temporary-files", "medium", "files left in a temporary directory",
    "empty /tmp and /var/tmp before imaging"),
  deletedSecret: rule("deleted-secret", "critical", "secret in unallocated space (recoverable deleted data)",
    "build the filesystem fresh from a clean tree (kiln's local builder does), never snapshot a disk where the secret was deleted"),
  deletedFile: rule("deleted-file", "medium", "deleted file whose content is still in the image",
    "build the filesystem fresh from a clean tree, or zero free space before imaging"),
  auditIncomplete: rule("audit-incomplete", "critical", "part of the image was not judged (a limit was reached, or bytes could not be read)",
    "remove what made the audit stop (a decompression bomb, a flood of candidate secrets, a damaged file), or accept the gap in a baseline by its path"),
} as const satisfies Record<string, Rule>;

export type RuleName = keyof typeof rules;

export const allRules: readonly Rule[] = Object.values(rules);

export function ruleById(id: string): Rule | undefined {
  return allRules.find((r) => r.id === id);
}
