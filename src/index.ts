// kiln's public library interface.
export { main, createProgram } from "./cli/main.js";
export { loadTemplate, type LoadedTemplate } from "./template/load.js";
export { templateJsonSchema, type Template } from "./template/schema.js";
export { Pipeline } from "./pipeline/pipeline.js";
export type { Step, StepContext, StepResult } from "./pipeline/step.js";
export { CleanupStack } from "./pipeline/cleanup-stack.js";
export { runBuild, BuildError } from "./pipeline/run-build.js";
export { localBuilder } from "./builders/local/local-builder.js";
export { KilnError, ConfigError, type ConfigProblem } from "./errors.js";
export { TextReporter, JsonReporter, type Reporter } from "./report/reporter.js";
export type { Communicator } from "./communicator/communicator.js";
