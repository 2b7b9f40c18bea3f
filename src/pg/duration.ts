// Durations as PostgreSQL's time settings take them (lock_timeout,
// statement_timeout, pg_dump --lock-wait-timeout): an integer of
// milliseconds, or with a unit.

/** The largest duration the server takes, in milliseconds (the settings are ints). */
export const DURATION_MAX = 2147483647;
export const DURATION_UNITS = ["ms", "s", "min", "h", "d"] as const;

const UNIT_MS: Readonly<Record<string, number>> = {
  "": 1,
  ms: 1,
  s: 1e3,
  min: 60e3,
  h: 3600e3,
  d: 86400e3,
};

/** A duration ("2s", "500ms", "5000") in milliseconds; throws on anything else. */
export function durationMillis(value: string): number {
  const m = /^([0-9]+)([a-z]*)$/.exec(value);
  const unit = m ? UNIT_MS[m[2]] : undefined;
  if (!m || unit === undefined) throw new RangeError(`not a duration: ${JSON.stringify(value)}`);
  return Number(m[1]) * unit;
}
