/**
 * A channel's schedule: event windows (an RFC 5545 recurrence in a named time zone, or a one-off start) and
 * the rules that say, for a given instant, which occurrence is in which phase and what must be done now.
 * Pure: no clock is read here, every time comes in as ms since the epoch, so the runner (src/effects) and the
 * tests (TestClock) drive it alike. This module is what the rest of the project imports; the rules live in
 * schedule-window.ts (the config's shape and the shared types), schedule-times.ts (occurrences and the
 * checks), schedule-steps.ts (phases, actions and the operator's commands), schedule-outputs.ts (the outputs a
 * schedule owns: off outside its windows) and schedule-ics.ts (iCalendar).
 */

