/**
 * Cron specs: the five-field Unix form, the six-field form with seconds, the
 * seven-field form with a year, and the `@yearly`-style shorthands. Parsing
 * and next-time arithmetic are croner's; this module fixes the accepted forms
 * and turns croner's errors into messages that name the bad field.
 *
 * Day-of-month and day-of-week follow Vixie cron: when both are restricted, a
 * day matching either one fires (`0 0 0 13 * 5` is every 13th and every
 * Friday); a `+` before the day-of-week (`+5`) asks for both.
 *
 * @module
 */
import { Cron } from "croner";

/** A spec that cannot be scheduled; the message says what is wrong. */
export class CronSpecError extends Error {}

/** The shorthands a spec may be, as their six-field equivalents. */
const SHORTHANDS: Readonly<Record<string, string>> = {
  "@yearly": "0 0 0 1 1 *",
  "@monthly": "0 0 0 1 * *",
  "@weekly": "0 0 0 * * 0",
  "@daily": "0 0 0 * * *",
  "@hourly": "0 0 * * * *",
};

/** The seven fields in croner's 7-part order, with the range of a plain number in each. */
const FIELDS = [
  { name: "second", min: 0, max: 59 },
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12 },
  { name: "day-of-week", min: 0, max: 7 },
  { name: "year", min: 1, max: 9999 },
] as const;

const FORMS = "5 fields (minute hour day-of-month month day-of-week), " +
  "6 (second first) or 7 (second first, year last), or one of " +
  Object.keys(SHORTHANDS).join(" ");

/** A parsed spec that computes its firing times. */
export interface CronSchedule {
  /** The spec as given. */
  readonly spec: string;
  /** The time zone its fields are read in. */
  readonly timezone: string;
  /** The first firing time strictly after `after`, or null when there is none. */
  next(after: Date): Date | null;
}

/** Throws a {@link CronSpecError} unless `timezone` is an IANA time zone this runtime knows. */
export function checkTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new CronSpecError(
      `unknown time zone "${timezone}" (use an IANA name such as UTC or Europe/Berlin)`,
    );
  }
}

/** Spells out croner's message without its prefix. */
function cronerMessage(error: unknown): string {
  return String((error as Error)?.message ?? error).replace(/^Cron\w*:\s*/, "");
}

/**
 * Checks one field: plain numbers against the field's range first (croner
 * reports some of those shifted by one), then croner with every other field
 * a wildcard, so that its error is known to be about this field.
 */
function checkField(spec: string, index: number, text: string): void {
  const { name, min, max } = FIELDS[index];
  const fail = (why: string) => {
    throw new CronSpecError(`invalid cron spec "${spec}": ${name} field "${text}": ${why}`);
  };
  for (const item of text.split(",")) {
    // A step (after "/") and an nth weekday (after "#") are counts, not field values.
    const values = item.split("/")[0].replace(/^\+/, "").split("#")[0];
    for (const value of values.split("-")) {
      if (/^\d+$/.test(value) && (Number(value) < min || Number(value) > max)) {
        fail(`${value} is out of range ${min}-${max}`);
      }
    }
  }
  const probe = FIELDS.map((_, i) => i === index ? text : "*").join(" ");
  try {
    new Cron(probe, { mode: "7-part", paused: true });
  } catch (error) {
    fail(cronerMessage(error));
  }
}

/**
 * Parses `spec` for `timezone` (default UTC). Throws {@link CronSpecError}
 * saying what is wrong: an unknown shorthand, a wrong number of fields, or
 * which field is bad and why.
 */
export function parseCron(spec: string, timezone = "UTC"): CronSchedule {
  checkTimezone(timezone);
  const trimmed = spec.trim();
  let fields: string[];
  if (trimmed.startsWith("@")) {
    const expanded = SHORTHANDS[trimmed.toLowerCase()];
    if (!expanded) {
      throw new CronSpecError(`invalid cron spec "${spec}": unknown shorthand; use ${FORMS}`);
    }
    fields = expanded.split(" ");
  } else {
    fields = trimmed === "" ? [] : trimmed.split(/\s+/);
    if (fields.length < 5 || fields.length > 7) {
      throw new CronSpecError(
        `invalid cron spec "${spec}": it has ${fields.length} field(s); a spec has ${FORMS}`,
      );
    }
  }
  // One shape for croner: seconds first, year last (5 fields fire at second 0 of any year).
  const seven = fields.length === 5 ? ["0", ...fields, "*"] : [...fields, "*"].slice(0, 7);
  seven.forEach((text, i) => checkField(spec, i, text));
  let cron: Cron;
  try {
    cron = new Cron(seven.join(" "), {
      mode: "7-part",
      timezone,
      paused: true,
      domAndDow: false,
    });
  } catch (error) {
    throw new CronSpecError(`invalid cron spec "${spec}": ${cronerMessage(error)}`);
  }
  return { spec, timezone, next: (after) => cron.nextRun(after) };
}
