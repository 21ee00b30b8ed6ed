/**
 * Calendar arithmetic on UTC days, from the reference date only: nothing here
 * reads the clock, so the same reference date gives the same dates forever.
 */
const DAY_MS = 86_400_000;
export const DAYS_PER_YEAR = 365.2425;

/** Days since 1970-01-01 of a valid `YYYY-MM-DD`. */
export function toEpochDay(date: string): number {
  return Math.floor(Date.parse(`${date}T00:00:00Z`) / DAY_MS);
}

/** `YYYY-MM-DD` of an epoch day. */
export function fromEpochDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** A FHIR `dateTime` with seconds and a UTC offset: epoch day plus minutes into that day. */
export function dateTimeAt(day: number, minuteOfDay: number): string {
  return new Date(day * DAY_MS + minuteOfDay * 60_000).toISOString().replace(".000Z", "Z");
}

/** True for a real calendar date (rejects 2023-02-30, which Date.parse would roll over). */
export function isCalendarDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const ms = Date.parse(`${value}T00:00:00Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === value;
}

/** Whole years between two epoch days (age on `day` of someone born on `birthDay`). */
export function ageInYears(birthDay: number, day: number): number {
  const b = fromEpochDay(birthDay);
  const d = fromEpochDay(day);
  let age = Number(d.slice(0, 4)) - Number(b.slice(0, 4));
  if (d.slice(5) < b.slice(5)) age--;
  return age;
}
