import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { KilnError } from "../errors.js";
import { basename, dirname, extname, resolve } from "node:path";
import type { ConfigProblem } from "../errors.js";
import type { SourceDocument, TemplatePath } from "../template/source-document.js";
import { goDurationSeconds } from "./go-time.js";
import { EngineError, renderPacker, translatePacker, type EngineScope } from "./template-engine.js";

export interface PackerOptions {
  vars?: readonly string[];
  varFiles?: readonly string[];
  env: NodeJS.ProcessEnv;
  now: Date;
  /** Packer's -only / -except: builder names (or types) to build or to leave out. */
  only?: readonly string[];
  except?: readonly string[];
  /** `evaluate` (build, validate, plan) renders every `{{ }}`; `translate` (convert) keeps what kiln can express. */
  mode: "evaluate" | "translate";
}

export interface ConvertedPacker {
  /** A kiln template, not yet validated. */
  template: Record<string, unknown>;
  /** Each option kiln does not support, named (errors with --strict). */
  warnings: string[];
  /** The same, where they are in the template. */
  warningsAt: { path: TemplatePath; message: string }[];
  problems: ConfigProblem[];
  /** Resolved variables, and which are sensitive (never printed). */
  variables: Map<string, { value: string; sensitive: boolean; source: string }>;
  /** Values computed from sensitive variables (`{{user \`token\` | …}}`): secrets too. */
  derivedSecrets: string[];
}

/**
 * A Packer JSON template, as opposed to a kiln one: JSON text, no `name` (kiln requires one),
 * a `builders` list, and no builder of kiln's own `local` type.
 */
export function isPackerTemplate(document: unknown, text: string): boolean {
  if (!text.trimStart().startsWith("{") || typeof document !== "object" || document === null || "name" in document) return false;
  const builders = (document as { builders?: unknown }).builders;
  return Array.isArray(builders) && builders.every((b) => (b as { type?: unknown } | null)?.type !== "local");
}

type Json = Record<string, unknown>;
type Warn = (path: TemplatePath, message: string) => void;

/** Packer option → kiln option, for the amazon-ebs builder. `true`: the same name and value. */
const builderOptions: Record<string, true | string | ((value: unknown, out: Json, warn: (message: string) => void) => void)> = {
  name: true, region: true, profile: true, source_ami: true, instance_type: true, subnet_id: true, vpc_id: true,
  spot_price: (value, out) => { if (value !== "0") out.spot_price = value; }, // "0": on demand, as in Packer
  associate_public_ip_address: true, ssh_username: true, ssh_port: true, ssh_host: true,
  ami_name: true, ami_description: true, tags: true, snapshot_tags: true, run_tags: true, ami_users: true, ami_groups: true,
  ami_regions: true, iam_instance_profile: true, temporary_security_group_source_cidrs: true,
  temporary_iam_instance_profile_policy_document: true, user_data: true, user_data_file: true, encrypt_boot: true, kms_key_id: true,
  region_kms_key_ids: "ami_region_kms_key_ids", custom_endpoint_ec2: "endpoint", imds_support: true, ssh_interface: true, aws_polling: true,
  source_ami_filter: (value, out, warn) => {
    const filter = value as { filters?: Json; owners?: string[]; most_recent?: boolean };
    for (const key of Object.keys(filter).filter((k) => !["filters", "owners", "most_recent"].includes(k))) warn(`source_ami_filter: ${key} is not supported by kiln and is ignored`);
    out.source_ami_filter = { filters: filter.filters ?? {}, owners: filter.owners, ...(filter.most_recent === undefined ? {} : { most_recent: filter.most_recent }) };
  },
  launch_block_device_mappings: (value, out, warn) => {
    const known = ["device_name", "volume_size", "volume_type", "iops", "throughput", "encrypted", "kms_key_id", "delete_on_termination"];
    out.launch_block_device_mappings = (value as Json[]).map((m) => {
      for (const key of Object.keys(m).filter((k) => !known.includes(k))) warn(`launch_block_device_mappings: ${key} is not supported by kiln and is ignored`);
      return Object.fromEntries(Object.entries(m).filter(([k]) => known.includes(k)));
    });
  },
  communicator: (value, out, warn) => {
    if (value === "none") out.communicator = "none";
    else if (value === "winrm") {
      out.winrm = true; // checked against the user data once every option is read
      warn("communicator winrm: kiln reaches Windows over OpenSSH only (its user data sets it up); using ssh");
    }
  },
  ssh_timeout: (value, out, warn) => {
    const seconds = goDurationSeconds(String(value));
    if (seconds === undefined) warn(`ssh_timeout ${String(value)} is not a duration like 5m; kiln's default is used`);
    else out.ssh_timeout = seconds;
  },
  spot_price_auto_product: (_value, out) => {
    // Deprecated in Packer itself: EC2 prices spot by itself now. `auto` is at most the on-demand price.
    out.spot_price ??= "auto";
  },
  metadata_options: (value, out, warn) => {
    const options = value as Json;
    out.metadata_options = {
      http_tokens: options.http_tokens ?? "optional",
      http_put_response_hop_limit: options.http_put_response_hop_limit ?? 1,
    };
    for (const key of Object.keys(options).filter((k) => k !== "http_tokens" && k !== "http_put_response_hop_limit")) warn(`metadata_options: ${key} is not supported by kiln and is ignored (kiln keeps the metadata service enabled: its first boot reads the launch key there)`);
  },
  windows_password_timeout: (value, out) => {
    out.windows = { ...(out.windows as Json | undefined), password_timeout: goDurationSeconds(String(value)) ?? 900 };
  },
};

/** Packer's credential options, and the variable the AWS SDK reads the same credential from. */
const credentialOptions: Record<string, string> = { access_key: "AWS_ACCESS_KEY_ID", secret_key: "AWS_SECRET_ACCESS_KEY", token: "AWS_SESSION_TOKEN" };

/** `problem` is given when values are evaluated (a build); convert only warns. */
function builderOf(packer: Json, index: number, windows: boolean, warn: Warn, env: NodeJS.ProcessEnv, problem?: (path: TemplatePath, message: string, hint: string) => void): Json {
  const out: Json = { type: "amazon-ebs" };
  for (const [key, value] of Object.entries(packer)) {
    // Packer takes "" as unset (templates fill options from variables that default to "").
    if (key === "type" || (value === "" && credentialOptions[key] === undefined)) continue;
    const mapping = builderOptions[key];
    const say = (message: string): void => warn(["builders", index, key], message);
    const credentialVariable = credentialOptions[key];
    if (credentialVariable !== undefined) {
      // The same value the SDK's chain reads (or none) changes nothing; another would be silently ignored: refused.
      if (problem !== undefined && value !== "" && value !== env[credentialVariable]) problem(["builders", index, key], `${key} gives credentials other than the environment's, and kiln takes credentials only from the AWS SDK's chain`, `export them as ${credentialVariable} (or use a profile), and remove ${key}`);
      else say(`${key}: kiln takes credentials from the AWS SDK's default chain (${credentialVariable}, AWS_PROFILE, SSO, a role); the template's value is the environment's, or empty`);
    } else if (mapping === true) out[key] = value;
    else if (typeof mapping === "string") out[mapping] = value;
    else if (mapping !== undefined) mapping(value, out, say);
    else say(`${key} is not supported by kiln and is ignored`);
  }
  // Packer's default, sent explicitly by Packer: a template whose user data reads the metadata
  // without a token (seed 000's does) works on AWS only with it. kiln's own templates say required.
  out.metadata_options ??= { http_tokens: "optional", http_put_response_hop_limit: 1 };
  if (windows) {
    out.platform = "windows";
    // The template brings its own bootstrap and sysprep (as Packer templates must): kiln's stay out.
    if (out.user_data !== undefined || out.user_data_file !== undefined) out.windows = { ...(out.windows as Json | undefined), generalize: false };
  }
  return out;
}

/** User data that brings up OpenSSH itself (installs or starts sshd). */
const setsUpOpenSsh = /OpenSSH|sshd|install-sshd\.ps1/i;
/** PowerShell and batch comments, which set up nothing. */
const comments = /<#[\s\S]*?#>|^\s*(#|REM\b|::).*$/gim;

/**
 * Packer's Windows pattern, `communicator: winrm` with user data that configures WinRM: kiln
 * reaches Windows over OpenSSH only, so with that user data nothing would ever answer on port
 * 22 and the build would wait out ssh_timeout. Refused before anything is created, unless the
 * user data visibly sets up OpenSSH; without user data kiln writes its own OpenSSH bootstrap.
 */
async function winrmRefusal(builder: Json, directory: string): Promise<{ message: string; hint: string } | undefined> {
  const file = typeof builder.user_data_file === "string" ? builder.user_data_file : undefined;
  let text = typeof builder.user_data === "string" ? builder.user_data : undefined;
  if (text === undefined && file !== undefined) {
    const bytes = await readFile(resolve(directory, file)).catch(() => undefined);
    text = bytes === undefined ? undefined : bytes[0] === 0xff && bytes[1] === 0xfe ? bytes.subarray(2).toString("utf16le") : bytes.toString("utf8");
  }
  if (text === undefined || setsUpOpenSsh.test(text.replace(comments, ""))) return undefined;
  return {
    message: `communicator winrm with ${file === undefined ? "the template's user_data" : `user_data_file ${file}`}, which does not set up OpenSSH: kiln connects to Windows over SSH only, so nothing would answer on port 22`,
    hint: `remove ${file === undefined ? "user_data" : "user_data_file"} and kiln generates user data that installs OpenSSH (and its first-boot key task), or make your user data install and start sshd`,
  };
}

function envList(list: unknown): Json {
  return Object.fromEntries((Array.isArray(list) ? list as string[] : []).map((pair) => {
    const at = pair.indexOf("=");
    return at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
  }));
}

function provisionerOf(packer: Json, index: number, warn: Warn): Json | undefined {
  const say = (key: string, message: string): void => warn(["provisioners", index, key], message);
  const common = ["type"];
  const take = (keys: Record<string, string | ((v: unknown, out: Json) => void)>): Json => {
    const out: Json = { type: packer.type, ...(packer.only === undefined ? {} : { only: packer.only }), ...(packer.except === undefined ? {} : { except: packer.except }) };
    for (const [key, value] of Object.entries(packer)) {
      if (common.includes(key)) continue;
      const mapping = keys[key];
      if (typeof mapping === "string") out[mapping] = value;
      else if (mapping !== undefined) mapping(value, out);
      else say(key, `${String(packer.type)}: ${key} is not supported by kiln and is ignored`);
    }
    return out;
  };
  const env = (value: unknown, out: Json): void => { out.env = envList(value); };
  switch (packer.type) {
    case "shell":
      return take({ inline: "inline", script: "script", scripts: "scripts", environment_vars: env, execute_command: "execute_command" });
    case "powershell":
      return take({ inline: "inline", script: "script", scripts: "scripts", environment_vars: env, valid_exit_codes: "valid_exit_codes" });
    case "file":
      return take({ source: "source", destination: "destination", direction: "direction" });
    case "windows-restart":
      return take({
        restart_command: "restart_command", restart_check_command: "restart_check_command",
        restart_timeout: (v, out) => {
          const seconds = goDurationSeconds(String(v));
          if (seconds === undefined) say("restart_timeout", `restart_timeout ${String(v)} is not a duration like 5m; kiln's default (600 s) is used`);
          else out.restart_timeout = seconds;
        },
      });
    case "shell-local":
      return take({ inline: "inline", script: "script", scripts: "scripts", command: (v, out) => { out.inline = [v]; }, environment_vars: env });
    default:
      say("type", `provisioner type ${String(packer.type)} is not supported by kiln; it is left out`);
      return undefined;
  }
}

/** Packer's `-var name=value` and `-var-file FILE` (JSON), over the template's defaults. */
async function packerVariables(source: SourceDocument, root: Json, options: PackerOptions, scope: Omit<EngineScope, "user">, problems: ConfigProblem[]): Promise<ConvertedPacker["variables"]> {
  const declared = (root.variables ?? {}) as Record<string, unknown>;
  const sensitive = new Set((root["sensitive-variables"] ?? []) as string[]);
  const variables: ConvertedPacker["variables"] = new Map();
  for (const [name, value] of Object.entries(declared)) {
    if (value === null) continue;
    try {
      // Defaults may read the environment: {{ env `AWS_REGION` }}.
      variables.set(name, { value: renderPacker(String(value), { ...scope, user: new Map() }), sensitive: sensitive.has(name), source: "default" });
    } catch (error) {
      problems.push(source.problemAt(["variables", name], error instanceof Error ? error.message : String(error)));
    }
  }
  for (const file of options.varFiles ?? []) {
    let values: unknown;
    try {
      values = parse(await readFile(resolve(file), "utf8")); // JSON, as Packer writes them (YAML reads JSON too)
    } catch (error) {
      throw new KilnError("KILN_VAR_FILE", `cannot read -var-file ${file}: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`, { hint: "a JSON (or YAML) mapping of variable names to values", exitCode: 2 });
    }
    if (typeof values !== "object" || values === null || Array.isArray(values)) throw new KilnError("KILN_VAR_FILE", `-var-file ${file} is not a mapping of names to values`, { exitCode: 2 });
    for (const [name, value] of Object.entries(values)) {
      if (typeof value === "object" && value !== null) throw new KilnError("KILN_VAR_FILE", `-var-file ${file}: ${name} is not a string, number or boolean`, { exitCode: 2 });
      variables.set(name, { value: String(value), sensitive: sensitive.has(name), source: `-var-file ${file}` });
    }
  }
  for (const pair of options.vars ?? []) {
    const at = pair.indexOf("=");
    if (at > 0) variables.set(pair.slice(0, at), { value: pair.slice(at + 1), sensitive: sensitive.has(pair.slice(0, at)), source: "-var" });
  }
  for (const [name, value] of Object.entries(declared)) {
    // convert writes a required variable as one without a default; a build needs its value.
    if (value === null && !variables.has(name) && options.mode === "evaluate") problems.push(source.problemAt(["variables", name], `variable ${name} is required and has no value`, `pass -var ${name}=…`));
  }
  return variables;
}

/** Renders (or translates) every string below `value`, reporting errors at their place. */
function renderAll(value: unknown, path: TemplatePath, render: (text: string) => string, source: SourceDocument, problems: ConfigProblem[]): unknown {
  if (typeof value === "string") {
    try {
      return render(value);
    } catch (error) {
      if (!(error instanceof EngineError)) throw error;
      problems.push(source.problemAt(path, error.message, "Packer's functions: user, env, isotime, timestamp, uuid, build_name, build_type, clean_resource_name, split"));
      return value;
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => renderAll(v, [...path, i], render, source, problems));
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderAll(v, [...path, k], render, source, problems)]));
  return value;
}

/**
 * A Packer JSON template as a kiln template: variables resolved (or, for convert, kept as
 * kiln variables), `{{ }}` rendered, -only/-except applied, each amazon-ebs builder's and
 * provisioner's options mapped, and every option kiln does not support named in a warning.
 */
export async function convertPacker(source: SourceDocument, file: string, options: PackerOptions): Promise<ConvertedPacker> {
  const root = source.document.toJS() as Json;
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const warningsAt: ConvertedPacker["warningsAt"] = [];
  const warn: Warn = (path, message) => {
    const at = source.problemAt(path, message);
    warnings.push(`${basename(file)}:${at.line}:${at.column} ${message}`);
    warningsAt.push({ path, message });
  };
  const derivedSecrets: string[] = [];
  const secret = (value: string): void => { derivedSecrets.push(value); };
  const base = { env: options.env, now: options.now, buildName: "", buildType: "amazon-ebs", sensitive: new Set((root["sensitive-variables"] ?? []) as string[]) };
  const variables = await packerVariables(source, root, options, base, problems);
  const user = new Map([...variables].map(([k, v]) => [k, v.value]));
  // For convert: variables whose default is just {{ env `X` }} become ${{ env.X }} where used.
  const envBacked = new Map(Object.entries((root.variables ?? {}) as Record<string, unknown>)
    .map(([name, value]) => [name, /^\{\{\s*env\s+[`"](\w+)[`"]\s*\}\}$/.exec(String(value))?.[1]] as const)
    .filter((e): e is readonly [string, string] => e[1] !== undefined));
  for (const key of Object.keys(root).filter((k) => !["variables", "sensitive-variables", "builders", "provisioners", "post-processors", "description", "min_packer_version"].includes(k))) {
    warn([key], `${key} is not supported by kiln and is ignored`);
  }

  const packerBuilders = (root.builders ?? []) as Json[];
  const selected = packerBuilders.map((b, i) => ({ b, i, name: String(b.name ?? b.type) }))
    .filter(({ name }) => (options.only === undefined || options.only.length === 0 || options.only.includes(name)) && !(options.except ?? []).includes(name));
  const packerProvisioners = (root.provisioners ?? []) as Json[];
  const windows = packerProvisioners.some((p) => p.type === "powershell" || p.type === "windows-restart")
    || packerBuilders.some((b) => b.communicator === "winrm");

  const builders: Json[] = [];
  for (const { b, i, name } of selected) {
    if (b.type !== "amazon-ebs") {
      problems.push(source.problemAt(["builders", i, "type"], `builder type ${String(b.type)} is not supported when running Packer templates`, "kiln runs Packer's amazon-ebs builder; leave this one out with -except"));
      continue;
    }
    const scope: EngineScope = { ...base, user, buildName: name };
    const render = options.mode === "evaluate" ? (t: string) => renderPacker(t, scope, secret) : (t: string) => translatePacker(t, scope, (action) => warn(["builders", i], `{{${action}}} has no kiln equivalent: evaluated now`), envBacked);
    const refuse = (path: TemplatePath, message: string, hint: string): void => { problems.push(source.problemAt(path, message, hint)); };
    const converted = builderOf(renderAll(b, ["builders", i], render, source, problems) as Json, i, windows, warn, options.env, options.mode === "evaluate" ? refuse : undefined);
    if (converted.winrm === true) {
      delete converted.winrm;
      const refusal = await winrmRefusal(converted, resolve(dirname(file)));
      if (refusal !== undefined && options.mode === "evaluate") refuse(["builders", i, "communicator"], refusal.message, refusal.hint);
      else if (refusal !== undefined) warn(["builders", i, "communicator"], `${refusal.message} (${refusal.hint})`);
    }
    builders.push(converted);
  }

  const names = new Set(selected.map((s) => s.name));
  const provisioners: Json[] = [];
  for (const [i, p] of packerProvisioners.entries()) {
    // A provisioner's own only/except name builders.
    if (Array.isArray(p.only) && !(p.only as string[]).some((n) => names.has(n))) continue;
    if (Array.isArray(p.except) && [...names].every((n) => (p.except as string[]).includes(n))) continue;
    const scope: EngineScope = { ...base, user, buildName: selected[0]?.name ?? "" };
    const render = options.mode === "evaluate" ? (t: string) => renderPacker(t, scope, secret) : (t: string) => translatePacker(t, scope, (action) => warn(["provisioners", i], `{{${action}}} has no kiln equivalent: evaluated now`), envBacked);
    const converted = provisionerOf(renderAll(p, ["provisioners", i], render, source, problems) as Json, i, warn);
    if (converted === undefined) continue;
    // Builders left out by -only/-except are not named any more.
    for (const key of ["only", "except"] as const) {
      if (!Array.isArray(converted[key])) continue;
      const kept = (converted[key] as string[]).filter((n) => names.has(n));
      if (kept.length === 0) delete converted[key];
      else converted[key] = kept;
    }
    provisioners.push(converted);
  }
  for (const [i, pp] of ((root["post-processors"] ?? []) as (Json | string)[]).entries()) {
    const type = typeof pp === "string" ? pp : pp.type;
    if (type === "manifest") warn(["post-processors", i], "manifest: kiln writes manifest.json beside every build's artifacts; its options are not used");
    else warn(["post-processors", i], `post-processor ${String(type)} is not supported by kiln and is left out`);
  }

  const name = basename(file, extname(file)).replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "packer";
  const template: Json = {
    name,
    ...(typeof root.description === "string" ? { description: root.description } : {}),
    ...(options.mode === "translate" && Object.keys((root.variables ?? {}) as Json).length > 0 ? {
      variables: Object.fromEntries([
        ...[...variables].filter(([k]) => !envBacked.has(k)).map(([k, v]) => [k, v.sensitive ? { sensitive: true } : v.value]),
        ...Object.entries((root.variables ?? {}) as Json).filter(([k, v]) => v === null && !variables.has(k)).map(([k]) => [k, { description: "required (no default in the Packer template)", ...((root["sensitive-variables"] as string[] | undefined)?.includes(k) === true ? { sensitive: true } : {}) }]),
      ]),
    } : {}),
    builders,
    provisioners,
  };
  return { template, warnings, warningsAt, problems, variables, derivedSecrets };
}
