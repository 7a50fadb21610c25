import { chown, open, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { KilnError } from "../errors.js";
import { exec } from "../system/exec.js";
import { asTreeRoot, giveToTree, type ForeignTreeOwner } from "../system/tree-owner.js";
import { usedInodes } from "./inode-map.js";

export interface Ext4ImageOptions {
  /** The tree to write; it becomes the filesystem's root directory. */
  root: string;
  /**
   * Must not exist yet: the image is always written into a file created new for it. With
   * `offset`, it is the disk file the caller just created, and the filesystem goes at that offset.
   */
  file: string;
  /** Where the filesystem starts in `file`: a partition's offset. */
  offset?: number;
  bytes: number;
  label: string;
  /** Filesystem UUID and directory hash seed, derived from the build's inputs. */
  uuid: string;
  /** Every timestamp the filesystem holds is this, or an earlier file time from the tree. */
  epoch: number;
  minimumInodes: number;
  signal: AbortSignal;
  /** Who owns the tree on this machine: mke2fs reads it as that tree's root (see tree-owner.ts). */
  owner?: ForeignTreeOwner | undefined;
}

/**
 * Writes a fresh ext4 filesystem from a directory tree (`mke2fs -d`) into a new file. No block
 * of it ever held anything else, so nothing deleted during the build can be in it. The result
 * is byte-for-byte reproducible: fixed UUID and hash seed, `E2FSPROGS_FAKE_TIME` for the
 * superblock, and a debugfs pass that sets the access, change and creation times mke2fs copies
 * from the build host (which differ on every run) to `epoch`.
 */
export async function writeExt4Image(options: Ext4ImageOptions): Promise<void> {
  const offset = options.offset ?? 0;
  const handle = await open(options.file, offset === 0 ? "wx" : "r+", 0o644);
  const config = join(tmpdir(), `kiln-mke2fs-${randomBytes(6).toString("hex")}.conf`);
  const env = { ...process.env, E2FSPROGS_FAKE_TIME: String(options.epoch), MKE2FS_CONFIG: config };
  const bytesPerInode = 16384;
  const inodes = Math.max(options.minimumInodes, Math.floor(options.bytes / bytesPerInode));
  try {
    if (offset === 0) await handle.truncate(options.bytes);
    await writeFile(config, mke2fsConfig);
    // As the tree's root, mke2fs reads owners and file capabilities as the image must hold
    // them. It reaches the tree as its working directory and the image as an open fd: that
    // root may not traverse root's private directories, nor open root's file by name.
    await giveToTree(options.owner, options.file);
    const [file, ...args] = asTreeRoot(options.owner, [
      "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-N", String(inodes), "-L", options.label, "-U", options.uuid,
      "-E", `hash_seed=${options.uuid},root_owner=0:0${offset === 0 ? "" : `,offset=${offset}`}`, "-d", ".", "/proc/self/fd/3", `${options.bytes / 1024}k`,
    ]);
    await exec(file as string, args, {
      what: "writing the filesystem (mke2fs)", signal: options.signal, env, cwd: options.root, extraFds: [handle.fd],
      hint: "if it ran out of space, set image.size larger",
    });
    await chown(options.file, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    // e2fsprogs reads `name?offset=N` as a filesystem inside a file; through the open descriptor
    // a '?' in the output directory's name cannot be misread.
    const filesystem = { name: `/proc/self/fd/3${offset === 0 ? "" : `?offset=${offset}`}`, fd: handle.fd };
    await setInodeTimes(filesystem, options.epoch, options.signal, env);
    await exec("e2fsck", ["-f", "-n", filesystem.name], { what: "checking the written filesystem (e2fsck)", signal: options.signal, env, extraFds: [filesystem.fd] });
  } finally {
    await handle.close().catch(() => undefined);
    await rm(config, { force: true });
  }
}

/**
 * kiln's own mke2fs configuration, so the filesystem's features do not depend on the build
 * host's /etc/mke2fs.conf: those Debian 12's ext4 uses, which kernels since 3.18 and GRUB 2.02
 * read (no orphan_file, which older ones refuse).
 */
const mke2fsConfig = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
`;

async function setInodeTimes(file: { name: string; fd: number }, epoch: number, signal: AbortSignal, env: NodeJS.ProcessEnv): Promise<void> {
  const { stdout } = await exec("dumpe2fs", [file.name], { what: "reading the inode map (dumpe2fs)", signal, env, extraFds: [file.fd] });
  // Inodes 1-10 other than the root directory are reserved (journal, resize) and keep mke2fs's own fake time.
  const inodes = usedInodes(stdout).filter((n) => n === 2 || n > 10);
  if (inodes.length === 0) throw new KilnError("KILN_IMAGE_EMPTY", "the written filesystem has no inodes in use");
  const commands = inodes.flatMap((n) => ["atime", "ctime", "crtime"].map((field) => `set_inode_field <${n}> ${field} @${epoch}`));
  const script = join(tmpdir(), `kiln-debugfs-${randomBytes(6).toString("hex")}`);
  await writeFile(script, `${commands.join("\n")}\n`);
  try {
    const { stdout: out, stderrTail } = await exec("debugfs", ["-w", "-f", script, file.name], { what: "setting reproducible inode times (debugfs)", signal, env, extraFds: [file.fd] });
    const complaint = [...out.split("\n"), ...stderrTail].find((line) => /error|invalid|couldn't|not found/i.test(line));
    if (complaint !== undefined) throw new KilnError("KILN_DEBUGFS", `debugfs could not set inode times on the written filesystem: ${complaint}`);
  } finally {
    await rm(script, { force: true });
  }
}
