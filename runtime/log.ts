/**
 * Pier's log: one line per event, with a timestamp and a level, to stderr.
 *
 * @module
 */

/** How serious a log line is. */
export type Level = "info" | "warn" | "error";

function write(level: Level, message: string): void {
  const time = new Date().toISOString().slice(11, 23);
  console.error(`${time} ${level.toUpperCase().padEnd(5)} ${message}`);
}

/** The log's entry points. */
export const log = {
  info: (message: string) => write("info", message),
  warn: (message: string) => write("warn", message),
  error: (message: string) => write("error", message),
};
