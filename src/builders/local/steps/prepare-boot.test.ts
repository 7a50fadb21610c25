import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KilnError } from "../../../errors.js";
import { chooseKernel } from "./prepare-boot.js";

describe("the kernel a disk boots", () => {
  it("is the one /vmlinuz points at (kernel upgrades inside the image move it), with /initrd.img", () => {
    const kernel = chooseKernel({ kernels: ["6.1.0-9-cloud-amd64", "6.1.0-28-cloud-amd64"], initrds: new Set(["6.1.0-9-cloud-amd64", "6.1.0-28-cloud-amd64"]), links: new Map([["/vmlinuz", "boot/vmlinuz-6.1.0-9-cloud-amd64"], ["/initrd.img", "boot/initrd.img-6.1.0-9-cloud-amd64"]]) });
    assert.deepEqual(kernel, { version: "6.1.0-9-cloud-amd64", kernel: "/vmlinuz", initrd: "/initrd.img" });
  });

  it("else the newest in /boot, numbers compared as numbers, with its initrd when there is one", () => {
    assert.deepEqual(chooseKernel({ kernels: ["6.1.0-9-amd64", "6.1.0-28-amd64", "5.10.0-30-amd64"], initrds: new Set(["6.1.0-28-amd64"]), links: new Map() }), { version: "6.1.0-28-amd64", kernel: "/boot/vmlinuz-6.1.0-28-amd64", initrd: "/boot/initrd.img-6.1.0-28-amd64" });
    assert.deepEqual(chooseKernel({ kernels: ["6.1.0-28-amd64"], initrds: new Set(), links: new Map([["/vmlinuz", "boot/vmlinuz-gone"]]) }), { version: "6.1.0-28-amd64", kernel: "/boot/vmlinuz-6.1.0-28-amd64" });
  });

  it("is missing: one error that names the package to add", () => {
    assert.throws(() => chooseKernel({ kernels: [], initrds: new Set(), links: new Map() }), (e: unknown) => e instanceof KilnError && e.code === "KILN_NO_KERNEL" && /linux-image-cloud-amd64/.test(e.hint ?? ""));
  });
});
