/**
 * Pier's log: one line per event, with a timestamp and a level, to stderr.
 *
 * @module
 */

/** How much detail to print. */
export type Level = "debug" | "info" | "warn" | "error";

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };
let threshold: Level = "info";

/** Sets the lowest level that is printed. */
export function setLogLevel(level: Level): void {
  threshold = level;
}

function write(level: Level, message: string): void {
  if (ORDER[level] < ORDER[threshold]) return;
  const time = new Date().toISOString().slice(11, 23);
  console.error(`${time} ${level.toUpperCase().padEnd(5)} ${message}`);
}

/** The log's entry points. */
export const log = {
  debug: (message: string) => write("debug", message),
  info: (message: string) => write("info", message),
  warn: (message: string) => write("warn", message),
  error: (message: string) => write("error", message),
};
