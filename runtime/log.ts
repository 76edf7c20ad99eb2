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

let logAs: LogFormat = "text";

/** Sets how every later log line of this thread is written. */
export function setLogFormat(to: LogFormat): void {
  logAs = to;
}

/** How log lines are written now (a component's workers are told it). */
export function logFormat(): LogFormat {
  return logAs;
}

/** Fields of a line, written `key=value` after the message in text. */
export type Fields = Record<string, string | number>;

/**
 * Request log lines not yet written: they go out together at most
 * {@link BATCH_MS} later (or before any other line, or at exit), in one
 * write: a write per request cost a tenth of a small request's time. Each
 * line is encoded into this buffer as it is made: kept as strings for the 50
 * ms, every line outlived a young-generation GC, and was copied and promoted.
 */
let batch = new Uint8Array(64 * 1024);
let batched = 0;
const BATCH_MS = 50;
addEventListener("unload", () => flush());

const encoder = new TextEncoder();

function flush(): void {
  if (batched === 0) return;
  // One write for the lines, past `console.error`, which scans its text for format directives.
  const bytes = batch.subarray(0, batched);
  batched = 0;
  try {
    for (let at = 0; at < bytes.byteLength;) at += Deno.stderr.writeSync(bytes.subarray(at));
  } catch {
    // stderr is gone (a closed pipe): the lines have nowhere to go.
  }
}

/** Adds `line` (UTF-8, at most 3 bytes per UTF-16 unit) to the batch, growing it if need be. */
function addToBatch(line: string): void {
  const most = line.length * 3;
  if (batched + most > batch.byteLength) {
    const grown = new Uint8Array(Math.max(batch.byteLength * 2, batched + most));
    grown.set(batch.subarray(0, batched));
    batch = grown;
  }
  batched += encoder.encodeInto(line, batch.subarray(batched)).written;
}

/** Each level as a text line shows it. */
const LEVEL_TEXT: Record<Level, string> = { info: "INFO ", warn: "WARN ", error: "ERROR" };

/** The last line's time (`Date.now()`) and its ISO text: the lines of a millisecond share it. */
let lastMs = NaN;
let lastTime = "";

/** Now, as `Date.prototype.toISOString` writes it. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastTime = new Date(ms).toISOString();
  }
  return lastTime;
}

function formatLine(level: Level, message: string, fields?: Fields): string {
  const time = isoNow();
  if (logAs === "json") return JSON.stringify({ time, level, message, ...fields });
  let line = `${time.slice(11, 23)} ${LEVEL_TEXT[level]} ${message}`;
  for (const key in fields) line += ` ${key}=${fields[key]}`;
  return line;
}

function write(level: Level, message: string, fields?: Fields): void {
  // The request lines written before this one come first.
  flush();
  console.error(formatLine(level, message, fields));
}

/** The log's entry points. */
export const log = {
  info: (message: string, fields?: Fields) => write("info", message, fields),
  warn: (message: string, fields?: Fields) => write("warn", message, fields),
  error: (message: string, fields?: Fields) => write("error", message, fields),
  /** A request's line: written with the others of the next {@link BATCH_MS}. */
  request: (fields: Fields) => {
    if (batched === 0) setTimeout(flush, BATCH_MS);
    addToBatch(`${formatLine("info", "request", fields)}\n`);
  },
};

/** Writes a line the guest of component `name` printed on `stream` (`out` or `err`). */
export function guestLine(name: string, stream: string, line: string): void {
  if (logAs === "json") {
    console.error(
      JSON.stringify({ time: new Date().toISOString(), component: name, stream, line }),
    );
  } else console.error(`[${name}:${stream}] ${line}`);
}
