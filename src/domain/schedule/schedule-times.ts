/**
 * When a schedule's windows occur. A recurrence is expanded by rrule-temporal in the wall time of its zone
 * (as if that were UTC, where no hour is missing) and each wall time is then placed in the zone: 20:00
 * Europe/Paris stays 20:00 local across both daylight-saving changes, and a local time that does not exist on
 * the spring-forward day is shifted forward by the gap (RFC 5545 3.3.5: 02:30 becomes 03:30), where
 * rrule-temporal alone would drop that day. A repeated local time (autumn) is its first instant. Also the
 * checks a schedule must pass before it is stored (checkSchedule), each a sentence for a 400.
 */
import { RRuleTemporal } from "rrule-temporal";
import type { FieldIssue } from "../base/errors.ts";
import { isoInstant, type Occurrence, type Schedule, type ScheduleWindow } from "./schedule-window.ts";
import { describeLocal, isTimeZone, localTime } from "./schedule-zone.ts";

/** How far ahead checkSchedule looks for overlaps. */
const CHECK_DAYS = 366;
export const DAY_MS = 86_400_000;
/** Occurrences one window may have in CHECK_DAYS: an hourly programme has 8784. */
const MAX_OCCURRENCES_PER_YEAR = 10_000;
/** The finest recurrence a window may have; finer ones would be checked minute by minute. */
/**
 * How far rrule-temporal searches for a rule's next occurrence before it gives up: its default (10,000 periods)
 * lets an hourly rule that can never occur (BYMONTH=2;BYMONTHDAY=30) run for seconds, inside the configuration's
 * write lock. 2,000 periods is still more than any rule slower than hourly needs to find its next occurrence
 * (the rarest, 29 February, is at most 8 years away), and ranges are searched a month at a time.
 */
const SEARCH_CAPS = { maxIterations: 2_000 } as const;

const FREQS = ["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"];

/** A window made ready to answer which T0s (ms) fall in a range, exceptions not yet removed. */
interface Compiled {
  readonly zone: string;
  readonly t0s: (fromMs: number, toMs: number) => ReadonlyArray<number>;
}

type Compiling = { readonly compiled: Compiled } | { readonly problem: string };

const DTSTART = /^DTSTART(?:;TZID=([^:;]+))?:(\d{8}T\d{6})(Z?)$/;

/** The RRULE's parts that would make a window occur more often than the checks can follow. */
const ruleLimits = (rrule: string): string | undefined => {
  const given = rrule
    .slice("RRULE:".length)
    .toUpperCase()
    .split(";")
    .map((part) => part.split("=") as [string, string | undefined]);
  // RFC 5545 allows each part once; a reader that kept the first or the last would each run another rule.
  const twice = given.find(([name], index) => given.findIndex(([other]) => other === name) !== index);
  if (twice !== undefined)
    return `${twice[0]} is given more than once; give each part of the RRULE once (several values go in one part, e.g. BYHOUR=1,2)`;
  const parts = new Map(given);
  const freq = parts.get("FREQ");
  if (freq !== undefined && !FREQS.includes(freq))
    return `FREQ must be one of ${FREQS.join(", ")}; got ${freq}`;
  if (parts.has("BYSECOND")) return "BYSECOND is not taken: a window starts on a whole minute";
  if ((parts.get("BYMINUTE") ?? "").split(",").length > 4) return "BYMINUTE takes at most 4 minutes";
  return undefined;
};

const compileRule = (window: ScheduleWindow, text: string): Compiling => {
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
  const start = lines.filter((line) => line.startsWith("DTSTART"));
  const rules = lines.filter((line) => line.startsWith("RRULE:"));
  if (start.length !== 1 || rules.length !== 1 || lines.length !== 2)
    return {
      problem:
        "rrule must be two lines, a DTSTART and an RRULE (e.g. DTSTART;TZID=Europe/Paris:20261205T200000\\nRRULE:FREQ=WEEKLY;BYDAY=SA); exceptions go in exdates",
    };
  const match = DTSTART.exec(start[0] ?? "");
  const [, tzid, local = "", utc] = match ?? [];
  if (match === null || (tzid === undefined) === (utc === "")) {
    return {
      problem: `DTSTART must be a local time with its zone (DTSTART;TZID=Europe/Paris:20261205T200000) or a UTC time ending in Z; got ${start[0]}`,
    };
  }
  const zone = tzid ?? "UTC";
  if (!isTimeZone(zone)) return { problem: `unknown time zone "${zone}" in DTSTART` };
  if (window.time_zone !== undefined && window.time_zone !== zone)
    return {
      problem: `time_zone "${window.time_zone}" differs from the rule's zone ${zone}; leave time_zone out of a rule's window`,
    };
  const limit = ruleLimits(rules[0] ?? "");
  if (limit !== undefined) return { problem: `the rule cannot be used: ${limit}` };
  let rule: RRuleTemporal;
  try {
    rule = new RRuleTemporal({ rruleString: `${start[0]}\n${rules[0]}`, ...SEARCH_CAPS });
  } catch (error) {
    return { problem: `the rule cannot be read: ${error instanceof Error ? error.message : String(error)}` };
  }
  try {
    rule.next(new Date(0));
  } catch (error) {
    return {
      problem: `the rule gives no occurrence that rrule-temporal finds (${error instanceof Error ? error.message : String(error)})`,
    };
  }
  // The same rule in wall time: its DTSTART and UNTIL as local times written as UTC.
  const until = rule.options().until;
  const wallRule = (rules[0] ?? "").replace(/UNTIL=[0-9TZ]+/, (given) =>
    until === undefined ? given : `UNTIL=${localTime(until.epochMilliseconds, zone).ics}Z`,
  );
  let wall: RRuleTemporal;
  try {
    wall = new RRuleTemporal({ rruleString: `DTSTART:${local}Z\n${wallRule}`, ...SEARCH_CAPS });
  } catch (error) {
    return { problem: `the rule cannot be read: ${error instanceof Error ? error.message : String(error)}` };
  }
  const place = (wallTime: ReturnType<RRuleTemporal["all"]>[number]) =>
    wallTime.toPlainDateTime().toZonedDateTime(zone, { disambiguation: "compatible" }).epochMilliseconds;
  return {
    compiled: {
      zone,
      // Wall time and the instant differ by the zone's offset, at most a day either way.
      t0s: (fromMs, toMs) =>
        wall
          .between(new Date(fromMs - DAY_MS), new Date(toMs + DAY_MS), true)
          .map(place)
          .filter((t0) => t0 >= fromMs && t0 < toMs),
    },
  };
};

const compileWindow = (window: ScheduleWindow): Compiling => {
  if (window.rrule !== undefined) return compileRule(window, window.rrule);
  const zone = window.time_zone ?? "UTC";
  if (!isTimeZone(zone)) return { problem: `unknown time zone "${zone}" in time_zone` };
  const t0 = Date.parse(window.start ?? "");
  return { compiled: { zone, t0s: (fromMs, toMs) => (t0 >= fromMs && t0 < toMs ? [t0] : []) } };
};

// Windows are immutable decoded values: each is compiled once, whoever asks.
const compiledWindows = new WeakMap<ScheduleWindow, Compiling>();

const compiled = (window: ScheduleWindow): Compiling => {
  let known = compiledWindows.get(window);
  if (known === undefined) {
    known = compileWindow(window);
    compiledWindows.set(window, known);
  }
  return known;
};

const isDate = (text: string): boolean => {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (match === null) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
};

const exdateProblem = (exdate: string): string | undefined =>
  isDate(exdate) || (isoInstant.test(exdate) && !Number.isNaN(Date.parse(exdate)))
    ? undefined
    : `exdate "${exdate}" is not a date (YYYY-MM-DD, in the window's zone) nor an instant (ISO 8601 with offset)`;

/** An exception removes an occurrence by its local date in the window's zone, or by its exact T0. */
const excluded = (window: ScheduleWindow, zone: string) => {
  const dates = new Set(window.exdates.filter(isDate));
  const instants = new Set(
    window.exdates.filter((exdate) => !isDate(exdate)).map((exdate) => Date.parse(exdate)),
  );
  return (t0: number) => instants.has(t0) || (dates.size > 0 && dates.has(localTime(t0, zone).date));
};

const occurrence = (window: ScheduleWindow, zone: string, t0: number): Occurrence => {
  const preroll_at = t0 - window.preroll_s * 1000;
  const postroll_at = t0 + window.duration_s * 1000;
  return {
    window: window.id,
    key: `${window.id}@${new Date(t0).toISOString()}`,
    t0,
    warm_at: preroll_at - window.medialive_lead_s * 1000,
    preroll_at,
    live_at: t0,
    postroll_at,
    end_at: postroll_at + window.postroll_s * 1000,
    time_zone: zone,
    staging: window.staging,
  };
};

/** A window's occurrences in a range; throws what rrule-temporal throws (a rule past its iteration cap). */
const expand = (window: ScheduleWindow, fromMs: number, toMs: number): Occurrence[] => {
  const ready = compiled(window);
  if (!("compiled" in ready)) return [];
  const { zone, t0s } = ready.compiled;
  const before = (window.medialive_lead_s + window.preroll_s) * 1000;
  const after = (window.duration_s + window.postroll_s) * 1000;
  const skip = excluded(window, zone);
  // [warm_at, end_at) overlaps [from, to) when T0 is in (from − after, to + before).
  return t0s(fromMs - after + 1, toMs + before)
    .filter((t0) => !skip(t0))
    .map((t0) => occurrence(window, zone, t0))
    .filter((found) => found.end_at > fromMs && found.warm_at < toMs);
};

/** The same for the runner and the pages: a rule that cannot be expanded has none (the checks say why). */
const windowOccurrences = (window: ScheduleWindow, fromMs: number, toMs: number): Occurrence[] => {
  try {
    return expand(window, fromMs, toMs);
  } catch {
    return [];
  }
};

/**
 * A window's occurrences over the checked year, a month at a time, given up past the most one may have (so a
 * dense rule costs no more than the limit): the occurrences, or the problem in words.
 */
const yearAhead = (window: ScheduleWindow, now: number): Occurrence[] | string => {
  const found: Occurrence[] = [];
  const step = (CHECK_DAYS * DAY_MS) / 12;
  try {
    for (let from = now; from < now + CHECK_DAYS * DAY_MS; from += step) {
      const part = expand(window, from, from + step);
      // An occurrence across a month's end is found in both months.
      found.push(...(found.length === 0 ? part : part.filter((o) => o.t0 > (found.at(-1)?.t0 ?? 0))));
      if (found.length > MAX_OCCURRENCES_PER_YEAR)
        return `occurs more than ${MAX_OCCURRENCES_PER_YEAR} times in the next ${CHECK_DAYS} days`;
    }
  } catch (error) {
    return `the rule cannot be expanded: ${error instanceof Error ? error.message : String(error)}`;
  }
  return found;
};

const byWarmAt = (a: Occurrence, b: Occurrence) => a.warm_at - b.warm_at || a.t0 - b.t0;

/**
 * Every occurrence whose [warm_at, end_at) overlaps [fromMs, toMs), sorted by warm_at, exceptions removed.
 * A window whose rule cannot be read has none (checkSchedule refuses it before it is stored).
 */
export const occurrences = (schedule: Schedule, fromMs: number, toMs: number): Occurrence[] =>
  schedule.windows.flatMap((window) => windowOccurrences(window, fromMs, toMs)).sort(byWarmAt);

/** The occurrence under way at `now` (if now < end_at) and the next ones: `count` in all. */
export const nextOccurrences = (schedule: Schedule, now: number, count: number): Occurrence[] => {
  const found: Occurrence[] = [];
  // Widening steps: a weekly window needs a week, a yearly one a year, a rule that has ended never comes.
  for (const days of [8, 40, 400, 3700]) {
    found.splice(0, found.length, ...occurrences(schedule, now, now + days * DAY_MS));
    if (found.length >= count) break;
  }
  return found.slice(0, count);
};

/** The first overlap of each pair of windows (or a window with itself) within the occurrences, sorted. */
const overlaps = (sorted: ReadonlyArray<Occurrence>): string[] => {
  const problems: string[] = [];
  const named = new Set<string>();
  let longest: Occurrence | undefined;
  for (const next of sorted) {
    if (longest !== undefined && next.warm_at < longest.end_at) {
      const pair = [longest.window, next.window].sort().join(" ");
      if (!named.has(pair)) {
        named.add(pair);
        const when = describeLocal(longest.t0, longest.time_zone);
        problems.push(
          longest.window === next.window
            ? `window ${next.window} overlaps itself on ${when}: one occurrence runs until ${describeLocal(longest.end_at, longest.time_zone)} (with its postroll), after the next warms up at ${describeLocal(next.warm_at, next.time_zone)}`
            : `windows ${longest.window} and ${next.window} overlap on ${when}: ${longest.window} runs until ${describeLocal(longest.end_at, longest.time_zone)}, after ${next.window} warms up at ${describeLocal(next.warm_at, next.time_zone)}`,
        );
      }
    }
    if (longest === undefined || next.end_at > longest.end_at) longest = next;
  }
  return problems;
};

/**
 * Every problem of a schedule, each a sentence that names its window, with the field it is about: a rule that
 * cannot be read, an unknown time zone, an exception that is not a date, a window id used twice, an output the
 * channel does not have, and two occurrences (of one window or two) whose [warm_at, end_at) overlap within
 * the next 366 days.
 */
export const scheduleIssues = (
  schedule: Schedule,
  outputIds: ReadonlyArray<string>,
  now: number,
): ReadonlyArray<FieldIssue> => {
  const issues: FieldIssue[] = [];
  const seen = new Set<string>();
  const readable: ScheduleWindow[] = [];
  for (const [index, window] of schedule.windows.entries()) {
    const own: string[] = [];
    if (seen.has(window.id)) own.push("its id is taken by an earlier window");
    seen.add(window.id);
    const ready = compiled(window);
    if ("problem" in ready) own.push(ready.problem);
    for (const exdate of window.exdates) {
      const problem = exdateProblem(exdate);
      if (problem !== undefined) own.push(problem);
    }
    if (window.outputs !== "all")
      for (const output of window.outputs)
        if (!outputIds.includes(output)) own.push(`output "${output}" is not an output of this channel`);
    const field = `schedule.windows[${index}]`;
    issues.push(...own.map((problem) => ({ field, message: `window ${window.id}: ${problem}` })));
    if (own.length === 0) readable.push(window);
  }
  const ahead: Occurrence[] = [];
  for (const window of readable) {
    const found = yearAhead(window, now);
    if (typeof found === "string")
      issues.push({ field: "schedule.windows", message: `window ${window.id}: ${found}` });
    else ahead.push(...found);
  }
  const overlapping = overlaps(ahead.sort(byWarmAt));
  return [...issues, ...overlapping.map((message) => ({ field: "schedule.windows", message }))];
};

/** Every problem of a schedule, in words (scheduleIssues without the fields). */
export const checkSchedule = (
  schedule: Schedule,
  outputIds: ReadonlyArray<string>,
  now: number,
): ReadonlyArray<string> => scheduleIssues(schedule, outputIds, now).map((issue) => issue.message);
