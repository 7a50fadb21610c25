import { stat, statfs } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { grubDirectories } from "../../../image/boot-loader.js";
import { diskOf } from "../../../template/schema.js";
import { parseSize } from "../../../image/size.js";
import { KilnError } from "../../../errors.js";
import type { LocalFacts } from "../plan-facts.js";
import type { Step } from "../../../pipeline/step.js";
import { requireTools, type HostTool } from "../../../system/host-tools.js";
import { startToolVersions } from "../../../system/tool-version.js";
import { inUserNamespace } from "../../../system/user-namespace.js";
import type { LocalBuildRequest } from "../request.js";

const always: HostTool[] = [
  // --map-users (util-linux 2.38) maps the tree's 65536 ids; 2.37's unshare (Ubuntu 22.04) has none.
  { command: "unshare", debianPackage: "util-linux", purpose: "isolates provisioners in namespaces, the tree's ids mapped", option: { name: "--map-users", since: "util-linux 2.38" } },
  { command: "chroot", debianPackage: "coreutils", purpose: "runs provisioners inside the tree" },
  { command: "setpriv", debianPackage: "util-linux", purpose: "confines provisioners (no_new_privs, capabilities, dies with kiln)" },
  { command: "pivot_root", debianPackage: "util-linux", purpose: "puts provisioners in a jail without the host's files" },
  { command: "perl", debianPackage: "perl-base", purpose: "gives provisioners a session keyring of their own" },
  { command: "tar", debianPackage: "tar", purpose: "unpacks the base" },
  { command: "mke2fs", debianPackage: "e2fsprogs", purpose: "writes the filesystem image" },
  { command: "debugfs", debianPackage: "e2fsprogs", purpose: "makes image timestamps reproducible" },
  { command: "dumpe2fs", debianPackage: "e2fsprogs", purpose: "reads the image's inode map" },
  { command: "e2fsck", debianPackage: "e2fsprogs", purpose: "checks the written filesystem" },
];

/** Every tool this build will need, checked before anything is created. */
export function toolsFor(request: LocalBuildRequest): HostTool[] {
  const tools = [...always];
  const { base, image } = request.builder;
  if (base.mmdebstrap !== undefined) tools.push({ command: "mmdebstrap", debianPackage: "mmdebstrap", purpose: "builds the base root filesystem" });
  if (/\.(zst|tzst)$/.test(base.tarball ?? "")) tools.push({ command: "zstd", debianPackage: "zstd", purpose: "decompresses the base tarball" });
  if (/\.(xz|txz)$/.test(base.tarball ?? "")) tools.push({ command: "xz", debianPackage: "xz-utils", purpose: "decompresses the base tarball" });
  // The audit looks inside zstd and xz files of the image (rotated logs, archives).
  if (request.loaded.template.audit !== false) {
    tools.push({ command: "zstd", debianPackage: "zstd", purpose: "the audit reads zstd files in the image" });
    tools.push({ command: "xz", debianPackage: "xz-utils", purpose: "the audit reads xz files in the image" });
    tools.push({ command: "bzip2", debianPackage: "bzip2", purpose: "the audit reads bzip2 files in the image" });
  }
  const disk = diskOf(request.builder);
  if (disk.partitions === "gpt") tools.push({ command: "sfdisk", debianPackage: "fdisk", purpose: "writes the disk's partition table" });
  if (disk.boot.length > 0) tools.push({ command: "grub-mkimage", debianPackage: "grub-common", purpose: "makes GRUB's boot images" });
  if (disk.boot.includes("uefi")) {
    tools.push({ command: "mkfs.fat", debianPackage: "dosfstools", purpose: "makes the EFI system partition" });
    tools.push({ command: "mcopy", debianPackage: "mtools", purpose: "copies GRUB into the EFI system partition without mounting it" });
  }
  if (image.formats.some((f) => f !== "raw")) tools.push({ command: "qemu-img", debianPackage: "qemu-utils", purpose: `converts to ${image.formats.filter((f) => f !== "raw").join(", ")}` });
  return tools;
}

/**
 * A fixed image size the output's disk cannot hold fails here, before anything is made, not
 * half-way through writing the image (mke2fs and the converted formats need it, sparse or not).
 */
async function refuseSizeBeyondDisk(request: LocalBuildRequest): Promise<void> {
  const { size } = request.builder.image;
  if (size === "auto") return;
  const wanted = parseSize(size);
  let existing = resolve(request.outputDirectory);
  while (!(await stat(existing).then(() => true, () => false)) && dirname(existing) !== existing) existing = dirname(existing);
  const disk = await statfs(existing);
  const free = disk.bavail * disk.bsize;
  if (wanted > free) {
    const index = request.loaded.template.builders.indexOf(request.builder);
    throw new KilnError("KILN_SIZE", `builders.${index}.image.size ${String(size)} is more than the ${(free / 1024 ** 3).toFixed(1)} GiB free where the output goes (${existing})`, {
      exitCode: 2, hint: "give a smaller size (auto sizes the image to its content), or --output-dir on a disk with room",
    });
  }
}

/** GRUB's images and modules for each firmware come from their own packages, not with grub-mkimage. */
async function requireGrubFiles(firmware: readonly ("bios" | "uefi")[]): Promise<void> {
  const packages = { bios: "grub-pc-bin", uefi: "grub-efi-amd64-bin" } as const;
  const missing = [];
  for (const f of firmware) {
    const file = join(grubDirectories[f], f === "bios" ? "boot.img" : "linux.mod");
    if (!(await stat(file).then((s) => s.isFile(), () => false))) missing.push(packages[f]);
  }
  if (missing.length > 0) {
    throw new KilnError("KILN_TOOL_MISSING", `GRUB's ${missing.join(" and ")} files are not on this machine (${firmware.map((f) => grubDirectories[f]).join(", ")}): the disk's boot loader is made from them`, {
      hint: `apt-get install ${missing.join(" ")}`, exitCode: 2,
    });
  }
}

/** The tools whose versions decide the image's bytes, for the manifest. */
function versionedTools(request: LocalBuildRequest): Record<string, readonly [string, ...string[]]> {
  const disk = diskOf(request.builder);
  return {
    mke2fs: ["mke2fs", "-V"],
    ...(request.builder.base.mmdebstrap === undefined ? {} : { mmdebstrap: ["mmdebstrap", "--version"] as const }),
    ...(request.builder.image.formats.some((f) => f !== "raw") ? { "qemu-img": ["qemu-img", "--version"] as const } : {}),
    ...(disk.partitions === "gpt" ? { sfdisk: ["sfdisk", "--version"] as const } : {}),
    ...(disk.boot.length > 0 ? { grub: ["grub-mkimage", "--version"] as const } : {}),
    ...(disk.boot.includes("uefi") ? { "mkfs.fat": ["mkfs.fat", "--version"] as const, mtools: ["mcopy", "--version"] as const } : {}),
  };
}

export const checkHost: Step<LocalBuildRequest, { rootless: boolean; toolVersions: () => Promise<Record<string, string | undefined>> }, LocalFacts> = {
  name: "check build host",
  plan: () => ({ calls: [], creates: [], note: "root (else a rootless rebuild), and every tool present" }),
  run: async (_ctx, request) => {
    if (process.getuid?.() !== 0) {
      throw new KilnError("KILN_NEEDS_ROOT", "the local builder needs root: it chroots, mounts /proc, /sys and /dev in private namespaces, and keeps file owners",
        { hint: "run it as root, or through kiln's CLI, which enters a user namespace by itself" });
    }
    if (await stat(request.outputDirectory).then(() => true, () => false)) {
      throw new KilnError("KILN_OUTPUT_EXISTS", `output directory ${request.outputDirectory} already exists`,
        { hint: "kiln never writes over an earlier build: remove it, or build again a second later" });
    }
    await refuseSizeBeyondDisk(request);
    const tools = toolsFor(request);
    await requireTools(tools);
    await requireGrubFiles(diskOf(request.builder).boot);
    const rootless = await inUserNamespace();
    // Asked now, answered while the build runs: the manifest records them.
    const toolVersions = startToolVersions(versionedTools(request));
    return { output: { rootless, toolVersions }, summary: `${rootless ? "rootless (user namespace)" : "root"}, ${tools.length} tools present` };
  },
};
