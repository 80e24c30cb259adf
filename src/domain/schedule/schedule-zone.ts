/**
 * Instants as people in a named time zone read them: the local date and time of an instant (for exceptions,
 * messages and the ICS file), and whether a zone is one the runtime knows. Intl's formatters are built once
 * per zone: the schedule's rules ask for thousands of times when they check a year of occurrences.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

const formatter = (zone: string): Intl.DateTimeFormat => {
  let known = formatters.get(zone);
  if (known === undefined) {
    known = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(zone, known);
  }
  return known;
};

/** An IANA zone name the runtime knows (Intl refuses the others); offsets like "+01:00" are not names. */
export const isTimeZone = (zone: string): boolean => {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(zone)) return false;
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
};

export interface LocalTime {
  /** YYYY-MM-DD */
  readonly date: string;
  /** HH:MM */
  readonly time: string;
  /** YYYYMMDDTHHMMSS, as an ICS DATE-TIME in its zone. */
  readonly ics: string;
}

/** The local date and time of an instant in a zone. */
export const localTime = (ms: number, zone: string): LocalTime => {
  const parts: Record<string, string> = {};
  for (const part of formatter(zone).formatToParts(ms)) parts[part.type] = part.value;
  const { year = "", month = "", day = "", hour = "", minute = "", second = "" } = parts;
  return {
    date: `${year}-${month}-${day}`,
    time: `${hour}:${minute}`,
    ics: `${year}${month}${day}T${hour}${minute}${second}`,
  };
};

/** "2026-12-05 20:00 Europe/Paris": an instant as a message names it. */
export const describeLocal = (ms: number, zone: string): string => {
  const local = localTime(ms, zone);
  return `${local.date} ${local.time} ${zone}`;
};
