/**
 * `npm run bench`, bootable disks: the wall time of a cached bootable build next to the bare tools
 * doing the same work (tar, chroot sh, sfdisk, mke2fs at the root partition's offset, mkfs.fat and
 * mcopy, grub-mkimage for BIOS and UEFI, boot sector written), and kiln test's time to SSH next to
 * a bare `qemu-system-x86_64` direct-kernel boot of the same disk (no firmware, no GRUB) until
 * sshd's banner, both served by the same metadata stand-in. All in one run, as ratios.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { basePaths } from "../src/builders/local/base-cache.js";
import { biosBootSectors, grubConfig, grubDirectories } from "../src/image/boot-loader.js";
import { gptLayout, sfdiskScript } from "../src/image/disk-layout.js";
import { ImdsServer } from "../src/vm-test/imds-server.js";
import { freeLoopbackPort } from "../src/vm-test/qemu.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const cacheDir = process.env.KILN_CACHE_DIR ?? "/var/tmp/kiln-test-cache";
const template = join(repo, "bench/bench-boot.yaml");
const rounds = Number(process.env.KILN_BENCH_ROUNDS ?? 3);
const scratch = mkdtempSync(join(tmpdir(), "kiln-bench-boot-"));
const mib = 1024 * 1024;

interface Manifest { inputs: { base: { key: string } }; disk: { layout: { name: string; offset: number; guid: string }[] }; artifacts: { path: string }[] }

function kilnBuild(): { seconds: number; out: string } {
  rmSync(join(scratch, "output"), { recursive: true, force: true });
  const started = process.hrtime.bigint();
  const run = spawnSync(process.execPath, [join(repo, "bin/kiln.js"), "build", template, "--cache-dir", cacheDir,
    "--work-dir", join(scratch, "work"), "--output-dir", join(scratch, "output")], { encoding: "utf8" });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (run.status !== 0) throw new Error(`kiln build failed:\n${run.stdout}\n${run.stderr}`);
  return { seconds, out: join(scratch, "output", readdirSync(join(scratch, "output"))[0] ?? "") };
}

/** The same disk made by hand with the same tools, timed from the cached base tarball. */
function bareTools(baseTarball: string): number {
  const started = process.hrtime.bigint();
  const root = join(scratch, "bare-root");
  const disk = join(scratch, "bare.raw");
  execFileSync("mkdir", ["-p", root]);
  execFileSync("tar", ["--extract", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-f", baseTarball, "-C", root]);
  execFileSync("chroot", [root, "/bin/sh", "-ec", "useradd --create-home --shell /bin/bash admin; echo 'Built by kiln' > /etc/motd; echo 'UUID=0d5b5e0e-1111-4222-8333-444455556666 / ext4 defaults 0 1' > /etc/fstab"]);
  const layout = gptLayout({ rootBytes: 900 * mib, boot: ["bios", "uefi"], seed: "bench" });
  execFileSync("truncate", ["-s", String(layout.bytes), disk]);
  execFileSync("sfdisk", ["-q", "--no-reread", "--no-tell-kernel", disk], { input: sfdiskScript(layout) });
  execFileSync("mke2fs", ["-q", "-t", "ext4", "-U", "0d5b5e0e-1111-4222-8333-444455556666", "-E", `offset=${layout.root.offset}`, "-d", root, disk, `${layout.root.bytes / 1024}k`]);
  const config = join(scratch, "grub.cfg");
  writeFileSync(config, grubConfig({ kernel: { version: "bench", kernel: "/vmlinuz", initrd: "/initrd.img" }, rootFilesystemUuid: "0d5b5e0e-1111-4222-8333-444455556666", rootPartitionGuid: layout.root.guid, kernelArgs: [] }));
  const modules = ["part_gpt", "ext2", "search", "search_fs_uuid", "linux", "serial", "terminal", "echo", "boot", "gzio"];
  execFileSync("grub-mkimage", ["-O", "x86_64-efi", "-o", join(scratch, "BOOTX64.EFI"), "-c", config, "-p", "/boot/grub", ...modules]);
  execFileSync("grub-mkimage", ["-O", "i386-pc", "-o", join(scratch, "core.img"), "-c", config, "-p", "/boot/grub", "biosdisk", ...modules]);
  const esp = layout.esp?.offset ?? 0;
  execFileSync("mkfs.fat", ["-F", "32", "-s", "1", `--offset=${esp / 512}`, disk, String(64 * 1024)], { stdio: "ignore" });
  const env = { ...process.env, MTOOLS_SKIP_CHECK: "1" };
  execFileSync("mmd", ["-i", `${disk}@@${esp}`, "::/EFI", "::/EFI/BOOT"], { env });
  execFileSync("mcopy", ["-i", `${disk}@@${esp}`, join(scratch, "BOOTX64.EFI"), "::/EFI/BOOT/BOOTX64.EFI"], { env });
  const sectors = biosBootSectors(readFileSync(join(grubDirectories.bios, "boot.img")), readFileSync(join(scratch, "core.img")), (layout.biosBoot?.offset ?? 0) / 512);
  writeFileSync(join(scratch, "mbr"), sectors.mbrCode);
  writeFileSync(join(scratch, "core"), sectors.core);
  execFileSync("dd", [`if=${join(scratch, "mbr")}`, `of=${disk}`, "conv=notrunc", "status=none"]);
  execFileSync("dd", [`if=${join(scratch, "core")}`, `of=${disk}`, "bs=512", `seek=${(layout.biosBoot?.offset ?? 0) / 512}`, "conv=notrunc", "status=none"]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  rmSync(root, { recursive: true, force: true });
  rmSync(disk, { force: true });
  return seconds;
}

function kilnTimeToSsh(disk: string): number {
  const run = spawnSync(process.execPath, [join(repo, "bin/kiln.js"), "test", disk, "--firmware", "bios", "--boots", "1", "--json", "--log-dir", join(scratch, `logs-${Date.now()}`)], { encoding: "utf8" });
  const result = JSON.parse(run.stdout) as { passed: boolean; boots: { secondsToSsh?: number }[] };
  if (!result.passed) throw new Error(`kiln test failed:\n${run.stdout}\n${run.stderr}`);
  return result.boots[0]?.secondsToSsh ?? NaN;
}

/** The kernel and initrd out of the disk's root filesystem, for QEMU's direct kernel boot. */
function extractKernel(disk: string, rootOffset: number): { kernel: string; initrd: string } {
  const kernel = join(scratch, "vmlinuz");
  const initrd = join(scratch, "initrd.img");
  execFileSync("debugfs", ["-R", `dump /vmlinuz ${kernel}`, `${disk}?offset=${rootOffset}`], { stdio: "ignore" });
  execFileSync("debugfs", ["-R", `dump /initrd.img ${initrd}`, `${disk}?offset=${rootOffset}`], { stdio: "ignore" });
  return { kernel, initrd };
}

/** Until sshd's banner arrives on the forwarded port, from QEMU's start. */
async function bareTimeToSsh(disk: string, kernel: { kernel: string; initrd: string }, rootGuid: string): Promise<number> {
  const imds = await ImdsServer.start({ instanceId: "i-0bench", publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKbench bench", hostname: "bench" });
  const port = await freeLoopbackPort();
  const bridge = `${process.execPath} ${join(repo, "dist/src/vm-test/imds-bridge.js")} ${imds.port}`;
  const started = Date.now();
  const qemu = spawn("qemu-system-x86_64", ["-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "1024", "-display", "none", "-monitor", "none", "-serial", "null",
    "-kernel", kernel.kernel, "-initrd", kernel.initrd, "-append", `root=PARTUUID=${rootGuid.toLowerCase()} ro console=ttyS0`,
    "-drive", `file=${disk},format=raw,if=virtio,snapshot=on`,
    "-netdev", `user,id=n0,net=169.254.169.0/24,hostfwd=tcp:127.0.0.1:${port}-:22,guestfwd=tcp:169.254.169.254:80-cmd:${bridge}`, "-device", "virtio-net-pci,netdev=n0"], { stdio: "ignore" });
  try {
    for (;;) {
      if (Date.now() - started > 600_000) throw new Error("no SSH banner within 600 s");
      const banner = await new Promise<string>((resolve) => {
        const socket = connect(port, "127.0.0.1");
        let text = "";
        socket.setTimeout(3000, () => socket.destroy());
        socket.on("data", (d) => { text += d.toString(); if (text.includes("\n")) socket.destroy(); });
        socket.on("close", () => resolve(text));
        socket.on("error", () => resolve(""));
      });
      if (banner.startsWith("SSH-")) return (Date.now() - started) / 1000;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    qemu.kill("SIGKILL");
    await imds.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

try {
  const first = kilnBuild(); // on a new machine this also builds the base into the cache
  const manifest = JSON.parse(readFileSync(join(first.out, "manifest.json"), "utf8")) as Manifest;
  const baseTarball = basePaths(cacheDir, manifest.inputs.base.key).tarball;
  const disk = join(scratch, "bench-disk.raw");
  execFileSync("cp", ["--sparse=always", join(first.out, "disk.raw"), disk]);
  const kiln: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < rounds; i++) {
    execFileSync("sync");
    kiln.push(kilnBuild().seconds);
    execFileSync("sync");
    bare.push(bareTools(baseTarball));
  }
  const k = median(kiln);
  const b = median(bare);
  console.log(`cached bootable build (kiln build, ${rounds} rounds): median ${k.toFixed(2)} s  [${kiln.map((s) => s.toFixed(2)).join(", ")}]`);
  console.log(`bare tools (tar + chroot + sfdisk + mke2fs + mkfs.fat/mcopy + grub-mkimage x2 + dd): median ${b.toFixed(2)} s  [${bare.map((s) => s.toFixed(2)).join(", ")}]`);
  console.log(`ratio kiln / bare tools: ${(k / b).toFixed(2)}`);

  const root = manifest.disk.layout.find((p) => p.name === "root");
  const kernel = extractKernel(disk, root?.offset ?? 0);
  const bootRounds = Number(process.env.KILN_BENCH_BOOT_ROUNDS ?? 1);
  const kilnSsh: number[] = [];
  const bareSsh: number[] = [];
  for (let i = 0; i < bootRounds; i++) {
    kilnSsh.push(kilnTimeToSsh(disk));
    bareSsh.push(await bareTimeToSsh(disk, kernel, root?.guid ?? ""));
  }
  const ks = median(kilnSsh);
  const bs = median(bareSsh);
  console.log(`time to SSH, kiln test (BIOS, GRUB, pinned login, ${bootRounds} round(s)): median ${ks.toFixed(1)} s  [${kilnSsh.map((s) => s.toFixed(1)).join(", ")}]`);
  console.log(`time to SSH banner, bare qemu direct-kernel boot:           median ${bs.toFixed(1)} s  [${bareSsh.map((s) => s.toFixed(1)).join(", ")}]`);
  console.log(`ratio kiln test / bare qemu: ${(ks / bs).toFixed(2)}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
