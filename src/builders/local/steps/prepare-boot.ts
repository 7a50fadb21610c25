import { KilnError } from "../../../errors.js";
import type { BootKernel } from "../../../image/boot-loader.js";
import { derivedGuid } from "../../../image/disk-layout.js";
import type { Step } from "../../../pipeline/step.js";
import { diskOf, type DiskConfig } from "../../../template/schema.js";
import type { LocalFacts } from "../plan-facts.js";
import type { LocalBuildRequest } from "../request.js";
import type { BaseRootfs } from "./base-rootfs.js";
import { inputsUuid } from "./filesystem-image.js";
import type { WorkTree } from "./unpack-base.js";

/** What the disk step needs to make the tree boot: the kernel GRUB loads and the ids fstab names. */
export interface BootPlan {
  disk: DiskConfig;
  /** The root filesystem's UUID: fstab and GRUB find it by this. */
  rootFilesystemUuid: string;
  /** Every GUID on the disk is derived from this. */
  seed: string;
  /** Absent when nothing boots the disk (boot: []). */
  kernel?: BootKernel;
}

/**
 * Run in the tree as root: lists its kernels (the /vmlinuz and /initrd.img links Debian's kernel
 * packages keep pointing at the newest, else /boot/vmlinuz-*), says which tool can grow the root
 * partition, and names the root filesystem by UUID in fstab (other lines kept). Settings arrive
 * in variables kiln made; the tree's own files are only read.
 */
const prepareScript = `set -eu
for f in /boot/vmlinuz-*; do [ -f "$f" ] && echo "kernel \${f#/boot/vmlinuz-}"; done
for f in /boot/initrd.img-*; do [ -f "$f" ] && echo "initrd \${f#/boot/initrd.img-}"; done
for l in /vmlinuz /initrd.img; do
  if [ -L "$l" ] && [ -f "$l" ]; then echo "link $l $(readlink "$l")"; fi
done
for tool in growpart sfdisk cloud-init; do command -v "$tool" >/dev/null 2>&1 && echo "tool $tool"; done
[ -d /etc/kiln ] && [ -f /etc/kiln/first-boot.conf ] && echo "first-boot"
mkdir -p /etc
if [ -f /etc/fstab ] && [ ! -L /etc/fstab ]; then awk '$2 != "/" && $0 !~ /^# UNCONFIGURED FSTAB/' /etc/fstab > /etc/fstab.kiln; else : > /etc/fstab.kiln; fi
printf '# the root filesystem, by its UUID (written by kiln)\\nUUID=%s / ext4 defaults,errors=remount-ro 0 1\\n' "$ROOT_UUID" >> /etc/fstab.kiln
rm -f /etc/fstab && mv /etc/fstab.kiln /etc/fstab && chmod 644 /etc/fstab
if [ "$GROW_ROOT" = yes ] && [ -f /etc/kiln/first-boot.conf ] && [ ! -L /etc/kiln/first-boot.conf ]; then
  grep -qx 'GROW_ROOT=yes' /etc/kiln/first-boot.conf || echo 'GROW_ROOT=yes' >> /etc/kiln/first-boot.conf
fi
`;

/** A kernel version as it appears in file names: it goes into GRUB's configuration, so nothing else. */
const versionPattern = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;

/** Prepares the tree for a partitioned disk: fstab by UUID, and the kernel that boots it. */
export const prepareBoot: Step<LocalBuildRequest & { base: BaseRootfs; tree: WorkTree }, { boot?: BootPlan }, LocalFacts> = {
  name: "prepare boot",
  plan: ({ builder }) => {
    const disk = diskOf(builder);
    if (disk.partitions === "none") return { calls: [], creates: [], note: "bare filesystem: nothing to prepare" };
    return { calls: [], creates: [], note: `fstab by UUID; ${disk.boot.length === 0 ? "no boot loader" : `kernel from the image for ${disk.boot.join(" and ")}`}` };
  },
  run: async (ctx, request) => {
    const disk = diskOf(request.builder);
    if (disk.partitions === "none") return { output: {}, summary: "bare filesystem: nothing to prepare" };
    const rootFilesystemUuid = inputsUuid(request);
    const lines: string[] = [];
    await request.tree.root.runScript(prepareScript, {
      what: "preparing the tree to boot",
      signal: ctx.signal,
      interpreter: "/bin/sh",
      env: { ROOT_UUID: rootFilesystemUuid, GROW_ROOT: "yes" },
      onStdoutLine: (line) => lines.push(line),
      onStderrLine: (line) => ctx.report.output("prepare boot", line),
    });
    const said = parseSaid(lines);
    const boot: BootPlan = { disk, rootFilesystemUuid, seed: rootFilesystemUuid };
    if (disk.boot.length > 0) boot.kernel = chooseKernel(said);
    const growth = said.tools.has("growpart") ? "growpart" : said.tools.has("sfdisk") ? "sfdisk" : undefined;
    if (growth === undefined) {
      ctx.report.warn("nothing in the image can grow the root partition into a larger disk: add cloud-guest-utils (growpart) to the packages");
    } else if (!said.firstBoot && !said.tools.has("cloud-init")) {
      ctx.report.warn("neither kiln's first-boot service (harden) nor cloud-init is in the image: the root partition does not grow into a larger disk");
    }
    const kernel = boot.kernel === undefined ? "no boot loader" : `Linux ${boot.kernel.version}${boot.kernel.initrd === undefined ? " (no initrd)" : ""}`;
    return { output: { boot }, summary: `fstab: / by UUID ${rootFilesystemUuid}; ${kernel}; root partition guid ${derivedGuid(rootFilesystemUuid, "root").toLowerCase()}` };
  },
};

interface Said {
  kernels: string[];
  initrds: Set<string>;
  links: Map<string, string>;
  tools: Set<string>;
  firstBoot: boolean;
}

function parseSaid(lines: readonly string[]): Said {
  const said: Said = { kernels: [], initrds: new Set(), links: new Map(), tools: new Set(), firstBoot: false };
  for (const line of lines) {
    const [kind, first, second] = line.split(" ");
    if (kind === "kernel" && first !== undefined && versionPattern.test(first)) said.kernels.push(first);
    else if (kind === "initrd" && first !== undefined && versionPattern.test(first)) said.initrds.add(first);
    else if (kind === "link" && first !== undefined && second !== undefined) said.links.set(first, second);
    else if (kind === "tool" && first !== undefined) said.tools.add(first);
    else if (kind === "first-boot") said.firstBoot = true;
  }
  return said;
}

/**
 * The kernel GRUB boots: the one /vmlinuz points at (Debian's kernel packages move that link to
 * each newly installed kernel, so the disk keeps booting after an upgrade inside it), else the
 * newest in /boot. Its initrd the same way.
 */
export function chooseKernel(said: Pick<Said, "kernels" | "initrds" | "links">): BootKernel {
  if (said.kernels.length === 0) {
    throw new KilnError("KILN_NO_KERNEL", "the image has no kernel (/boot/vmlinuz-*), so the disk cannot boot", {
      hint: "add a kernel package such as linux-image-cloud-amd64 to base.mmdebstrap.packages (or install one in a provisioner), or set disk: { partitions: gpt, boot: [] }",
      exitCode: 2,
    });
  }
  const linked = said.links.get("/vmlinuz")?.replace(/^\/?boot\/vmlinuz-/, "");
  if (linked !== undefined && said.kernels.includes(linked)) {
    const initrdLink = said.links.get("/initrd.img")?.replace(/^\/?boot\/initrd\.img-/, "");
    return { version: linked, kernel: "/vmlinuz", ...(initrdLink === linked && said.initrds.has(linked) ? { initrd: "/initrd.img" } : said.initrds.has(linked) ? { initrd: `/boot/initrd.img-${linked}` } : {}) };
  }
  const newest = [...said.kernels].sort(compareVersions).at(-1) as string;
  return { version: newest, kernel: `/boot/vmlinuz-${newest}`, ...(said.initrds.has(newest) ? { initrd: `/boot/initrd.img-${newest}` } : {}) };
}

/** Kernel file versions in order: numbers as numbers (6.1.0-28 after 6.1.0-9). */
export function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}
