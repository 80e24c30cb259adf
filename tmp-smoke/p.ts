import { Schema } from "effect";
import { Schedule, checkSchedule, occurrences } from "../src/domain/schedule.ts";
const now = Date.parse("2026-11-27T08:00:00Z");
for (const r of ["FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=HOURLY;BYMINUTE=0,15,30,45", "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,15,30,45", "FREQ=WEEKLY;UNTIL=20261219T190000Z", "FREQ=WEEKLY;UNTIL=20261219", "FREQ=WEEKLY;COUNT=2", "FREQ=MONTHLY;BYDAY=-1SU", "FREQ=YEARLY;INTERVAL=100"]) {
  const s = Schema.decodeUnknownSync(Schedule)({ windows: [{ id: "a", rrule: `DTSTART;TZID=Europe/Paris:20261205T200000\nRRULE:${r}`, duration_s: 60 }] });
  const t = performance.now();
  const c = checkSchedule(s, [], now);
  const o = occurrences(s, now, now + 40 * 86400e3);
  console.log(r, JSON.stringify(c), o.length, o.slice(0, 3).map(x => x.key).join(" "), Math.round(performance.now() - t), "ms");
}
