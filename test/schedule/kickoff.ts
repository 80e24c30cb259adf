/**
 * The real-time tests' window (issue 52, points 2 and 3): one-off, T0 20 s after it is made, MediaLive
 * started 10 s before the preroll, a 5 s preroll, 8 s of programme and a 3 s postroll.
 */
export const S = 1000;
export const LEAD = 10;
export const PREROLL = 5;
export const DURATION = 8;
export const POSTROLL = 3;

/** A T0 on a whole second, `seconds` from now. */
export const t0In = (seconds: number) => Math.ceil((Date.now() + seconds * S) / S) * S;

/** The channel's schedule: the window "kickoff" at `t0`, shown in Paris time. */
export const kickoffSchedule = (t0: number) => ({
  windows: [
    {
      id: "kickoff",
      start: new Date(t0).toISOString(),
      time_zone: "Europe/Paris",
      duration_s: DURATION,
      medialive_lead_s: LEAD,
      preroll_s: PREROLL,
      postroll_s: POSTROLL,
    },
  ],
});
