/**
 * The phases an occurrence of a channel's scheduled window goes through, in order, written once: the
 * schedule's rules, its runner, its events and the pages all take them from here.
 *   idle → warming (MediaLive started) → preroll (outputs on the slate) → live (the programme) →
 *   postroll (the slate again) → ending (outputs disabled, MediaLive stopped) → idle
 */
export const SCHEDULE_PHASES = ["idle", "warming", "preroll", "live", "postroll", "ending"] as const;
export type SchedulePhase = (typeof SCHEDULE_PHASES)[number];
