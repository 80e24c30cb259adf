/**
 * A channel's schedule as an iCalendar file (RFC 5545), for the calendars operators already read: one VEVENT
 * per window, its rule and exceptions (or a one-off start) in the window's own zone, the programme's length,
 * the channel's name as the summary. Lines end in CRLF and are folded at 75 octets, as the RFC asks. The zone
 * is named by its IANA id (TZID) without a VTIMEZONE block, as the common calendars read it.
 */

import { DAY_MS, occurrences } from "./schedule-times.ts";
import type { Schedule, ScheduleWindow } from "./schedule-window.ts";
import { localTime } from "./schedule-zone.ts";

/** TEXT values escape backslash, semicolon, comma and line ends (RFC 5545 3.3.11). */
const escapeText = (text: string) =>
  text.replace(/[\\;,]/g, (character) => `\\${character}`).replace(/\r?\n/g, "\\n");

/** A content line folded at 75 octets, never inside a UTF-8 character; the next part starts with a space. */
const fold = (line: string): string => {
  const parts: string[] = [];
  let part = "";
  let octets = 0;
  for (const character of line) {
    const point = character.codePointAt(0) ?? 0;
    const size = point < 0x80 ? 1 : point < 0x800 ? 2 : point < 0x10000 ? 3 : 4;
    const limit = parts.length === 0 ? 75 : 74;
    if (octets + size > limit) {
      parts.push(part);
      [part, octets] = ["", 0];
    }
    part += character;
    octets += size;
  }
  parts.push(part);
  return parts.join("\r\n ");
};

/** A DATE-TIME property in a zone: `NAME;TZID=zone:local`, or `NAME:…Z` in UTC. */
const dateTime = (name: string, ms: number, zone: string) =>
  zone === "UTC" ? `${name}:${localTime(ms, "UTC").ics}Z` : `${name};TZID=${zone}:${localTime(ms, zone).ics}`;

/** A window's exceptions as the instants they remove: a local date removes every occurrence on it. */
const exdateLines = (window: ScheduleWindow, zone: string): string[] => {
  const bare: Schedule = {
    windows: [{ ...window, exdates: [], medialive_lead_s: 0, preroll_s: 0, postroll_s: 0 }],
  };
  return window.exdates.flatMap((exdate) => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(exdate)) return [dateTime("EXDATE", Date.parse(exdate), zone)];
    const noon = Date.parse(`${exdate}T12:00:00Z`);
    return occurrences(bare, noon - 2 * DAY_MS, noon + 2 * DAY_MS)
      .filter((found) => localTime(found.t0, zone).date === exdate)
      .map((found) => dateTime("EXDATE", found.t0, zone));
  });
};

const eventLines = (
  channel: { readonly id: string; readonly name: string },
  window: ScheduleWindow,
  stamp: string,
): string[] => {
  const header = [
    "BEGIN:VEVENT",
    `UID:${window.id}@${channel.id}.distributary`,
    `DTSTAMP:${stamp}`,
    `SUMMARY:${escapeText(channel.name)}`,
  ];
  const footer = [`DURATION:PT${window.duration_s}S`, "END:VEVENT"];
  if (window.rrule === undefined) {
    const zone = window.time_zone ?? "UTC";
    return [...header, dateTime("DTSTART", Date.parse(window.start ?? ""), zone), ...footer];
  }
  const lines = window.rrule
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
  const zone = /^DTSTART;TZID=([^:;]+):/m.exec(window.rrule)?.[1] ?? "UTC";
  return [
    ...header,
    ...lines.filter((line) => line.startsWith("DTSTART")),
    ...lines.filter((line) => line.startsWith("RRULE:")),
    ...exdateLines(window, zone),
    ...footer,
  ];
};

/** The schedule as an RFC 5545 VCALENDAR: one VEVENT per window, DTSTAMP `now`. */
export const scheduleIcs = (
  channel: { readonly id: string; readonly name: string },
  schedule: Schedule,
  now: number,
): string => {
  const stamp = `${localTime(now, "UTC").ics}Z`;
  const lines = [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//distributary//schedule//EN",
    "CALSCALE:GREGORIAN",
    `X-WR-CALNAME:${escapeText(channel.name)}`,
    ...schedule.windows.flatMap((window) => eventLines(channel, window, stamp)),
    "END:VCALENDAR",
  ];
  return `${lines.map(fold).join("\r\n")}\r\n`;
};
