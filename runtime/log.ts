/**
 * Pier's log: one line per event, with a timestamp and a level, to stderr;
 * with `--log-format json`, one JSON object per line instead (the guests'
 * output lines too: see {@link guestLine}).
 *
 * @module
 */

/** How serious a log line is. */
export type Level = "info" | "warn" | "error";

/** How log lines are written: for people, or one JSON object each. */
export type LogFormat = "text" | "json";

let format: LogFormat = "text";

/** Sets how every later log line of this thread is written. */
export function setLogFormat(to: LogFormat): void {
  format = to;
}

/** How log lines are written now (a component's workers are told it). */
export function logFormat(): LogFormat {
  return format;
}

/** Fields of a line, written `key=value` after the message in text. */
export type Fields = Record<string, string | number>;

function write(level: Level, message: string, fields?: Fields): void {
  const time = new Date().toISOString();
  if (format === "json") {
    console.error(JSON.stringify({ time, level, message, ...fields }));
    return;
  }
  let line = `${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${message}`;
  for (const key in fields) line += ` ${key}=${fields[key]}`;
  console.error(line);
}

/** The log's entry points. */
export const log = {
  info: (message: string, fields?: Fields) => write("info", message, fields),
  warn: (message: string, fields?: Fields) => write("warn", message, fields),
  error: (message: string, fields?: Fields) => write("error", message, fields),
};

/** Writes a line the guest of component `name` printed on `stream` (`out` or `err`). */
export function guestLine(name: string, stream: string, line: string): void {
  if (format === "json") {
    console.error(
      JSON.stringify({ time: new Date().toISOString(), component: name, stream, line }),
    );
  } else console.error(`[${name}:${stream}] ${line}`);
}
