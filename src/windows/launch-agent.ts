import { KilnError } from "../errors.js";
import type { AmazonEbsBuilderConfig } from "../template/schema.js";

export type WindowsVersion = "2012" | "2016" | "2019" | "2022" | "2025";
export type LaunchAgent = "ec2config" | "ec2launch-v1" | "ec2launch-v2";

export interface WindowsTarget {
  version: WindowsVersion;
  agent: LaunchAgent;
}

/**
 * The Windows Server version and launch agent of a source image: the template's, else read
 * from AWS's image names (`Windows_Server-2019-English-Full-Base-…`, `EC2LaunchV2-Windows_Server-…`).
 * EC2Launch v2 comes with 2022 and later and with images named for it; v1 with 2016 and 2019;
 * EC2Config with 2012 R2 and older.
 */
export function windowsTarget(windows: AmazonEbsBuilderConfig["windows"], imageName: string): WindowsTarget {
  const named = /Windows_Server-(2012|2016|2019|2022|2025)/i.exec(imageName)?.[1] as WindowsVersion | undefined;
  const version = windows.version !== "auto" ? windows.version : named;
  if (version === undefined) {
    throw new KilnError("KILN_WINDOWS_VERSION", `cannot tell the Windows Server version of source image "${imageName}"`, {
      hint: "set windows.version (2016, 2019, 2022, 2025) in the builder",
    });
  }
  if (windows.launch_agent !== "auto") return { version, agent: windows.launch_agent };
  if (/EC2LaunchV2/i.test(imageName) || version === "2022" || version === "2025") return { version, agent: "ec2launch-v2" };
  return { version, agent: version === "2012" ? "ec2config" : "ec2launch-v1" };
}

/** Server 2019 and later carry OpenSSH as a Windows capability; older ones need the release zip. */
export function hasOpenSshCapability(version: WindowsVersion): boolean {
  return version !== "2012" && version !== "2016";
}
