/**
 * Pier's settings from flags and environment variables.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { LogFormat } from "./log.ts";
import { checkTimezone, CronSpecError } from "./scheduling/cron.ts";

/** Where Pier finds its components, keeps its data and listens. */
export interface Config {
  componentsDir: string;
  dataDir: string;
  port: number;
  hostname: string;
  /** IANA time zone that job specs are read in. */
  timezone: string;
  /** Seconds an extra worker of a busy component, or database read process, may idle. */
  workerIdleSeconds: number;
  /** Seconds a stop signal leaves requests in flight and job runs to finish. */
  graceSeconds: number;
  /** How log lines are written: `text`, or one JSON object each. */
  logFormat: LogFormat;
  /** Whether each request gets a line in the log. */
  requestLog: boolean;
  /** Server processes serving the port together (the launcher's; see `supervisor.ts`). */
  processes: number;
}

/** Server processes by default: measured with `deno task bench` (see README, Benchmarks). */
const DEFAULT_PROCESSES = 1;

/** The text `--help` prints. */
export const USAGE = `Usage: deno task start [options]

Options (each also from an environment variable):
  --components DIR   components directory (PIER_COMPONENTS, default ./components)
  --data DIR         data directory: main.db and cache/ (PIER_DATA, default ./data)
  --port N           port to listen on (PORT, default 8000)
  --hostname H       address to listen on (PIER_HOSTNAME, default 127.0.0.1)
  --timezone TZ      IANA time zone of job schedules (default UTC)
  --worker-idle S    seconds a busy component's extra workers, and extra
                     database read processes, may idle before they stop
                     (default 30)
  --grace S          on SIGTERM or SIGINT, seconds the requests in flight and
                     job runs have to finish before they are cut (default 10)
  --log-format F     text (default) or json: every log line, the
                     guests' output and the request log included,
                     as one JSON object
  --request-log L    on (default) or off: a log line per request
  --processes N      server processes sharing the port and the data dir
                     (PIER_PROCESSES, default ${DEFAULT_PROCESSES}; Linux)
  --watch            rebuild a components/*.ts when it (or what it imports)
                     changes; the server reloads it (see Hot reload)
  --help             print this text
`;

/** A flag or variable with a bad value. */
export class ConfigError extends Error {}

/** Reads the config; `env` is consulted only for the variables Pier knows. */
export function parseConfig(
  args: string[],
  env: (name: string) => string | undefined,
): Config | "help" {
  const { values } = parseArgs({
    args,
    options: {
      components: { type: "string" },
      data: { type: "string" },
      port: { type: "string" },
      hostname: { type: "string" },
      timezone: { type: "string" },
      "worker-idle": { type: "string" },
      grace: { type: "string" },
      "log-format": { type: "string" },
      "request-log": { type: "string" },
      processes: { type: "string" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help) return "help";
  const portText = values.port ?? env("PORT") ?? "8000";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`--port: "${portText}" is not a port number (0-65535)`);
  }
  const timezone = values.timezone ?? "UTC";
  try {
    checkTimezone(timezone);
  } catch (error) {
    if (!(error instanceof CronSpecError)) throw error;
    throw new ConfigError(`--timezone: ${error.message}`);
  }
  const idleText = values["worker-idle"] ?? "30";
  const workerIdleSeconds = Number(idleText);
  if (!(workerIdleSeconds > 0) || !Number.isFinite(workerIdleSeconds)) {
    throw new ConfigError(`--worker-idle: "${idleText}" is not a positive number of seconds`);
  }
  const graceText = values.grace ?? "10";
  const graceSeconds = Number(graceText);
  if (graceText.trim() === "" || !(graceSeconds >= 0) || !Number.isFinite(graceSeconds)) {
    throw new ConfigError(`--grace: "${graceText}" is not a number of seconds (0 or more)`);
  }
  const logFormat = values["log-format"] ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    throw new ConfigError(`--log-format: "${logFormat}" is neither text nor json`);
  }
  const requestLog = values["request-log"] ?? "on";
  if (requestLog !== "on" && requestLog !== "off") {
    throw new ConfigError(`--request-log: "${requestLog}" is neither on nor off`);
  }
  const processesText = values.processes ?? env("PIER_PROCESSES") ?? String(DEFAULT_PROCESSES);
  const processes = Number(processesText);
  if (!Number.isInteger(processes) || processes < 1 || processes > 64) {
    throw new ConfigError(`--processes: "${processesText}" is not a number of processes (1-64)`);
  }
  if (processes > 1 && Deno.build.os !== "linux") {
    throw new ConfigError("--processes: several processes on one port need Linux (SO_REUSEPORT)");
  }
  return {
    componentsDir: values.components ?? env("PIER_COMPONENTS") ?? "./components",
    dataDir: values.data ?? env("PIER_DATA") ?? "./data",
    port,
    hostname: values.hostname ?? env("PIER_HOSTNAME") ?? "127.0.0.1",
    timezone,
    workerIdleSeconds,
    graceSeconds,
    logFormat,
    requestLog: requestLog === "on",
    processes,
  };
}
