/**
 * Where provisioners run: a chroot on this machine for the local builder, an SSH session for
 * cloud builders. Provisioners only see this interface.
 */
export interface Communicator {
  /** A short name for progress output ("chroot", "ssh 203.0.113.7"). */
  readonly description: string;
  /** Runs a POSIX shell script as root in the target; rejects with CommandError on non-zero exit. */
  runScript(script: string, options: RunScriptOptions): Promise<void>;
  /** Copies a local file or directory to an absolute path in the target. */
  upload(localPath: string, targetPath: string, options: UploadOptions): Promise<void>;
  /** Copies a file or directory at an absolute path in the target to this machine. */
  download(targetPath: string, localPath: string, options: DownloadOptions): Promise<void>;
}

export interface DownloadOptions {
  what: string;
  signal: AbortSignal;
  /** Told about each entry that was not copied (a fifo, a device, a link out of the copy), and why. */
  onSkipped?: (path: string, why: string) => void;
}

export interface RunScriptOptions {
  /** Names the work in error messages ("provisioner 2 (shell)"). */
  what: string;
  signal: AbortSignal;
  env?: Readonly<Record<string, string>>;
  /** The interpreter line for scripts that lack one; default `/bin/sh -e`. */
  interpreter?: string;
  /**
   * How to run the stored script, Packer's way: `{{ .Path }}` becomes its path, `{{ .Vars }}`
   * a command that sets `env` (the values come from a private file, never the command line).
   * Default: run it as root.
   */
  executeCommand?: string;
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
}

export interface UploadOptions {
  what: string;
  signal: AbortSignal;
  /** Octal mode for the destination (the file, or the top directory). */
  mode?: string;
  /** `user` or `user:group`, resolved inside the target. */
  owner?: string;
}
