/**
 * Input health rules (`redundancy.health`) as an operator writes them: every kind of rule, one expression
 * that names most of them, and the clear time. The domain's tests parse it; the API's take and give it back.
 */
export const exampleHealth = {
  rules: {
    no_video: { pid_missing: "video", for_ms: 1000 },
    no_pcr: { pcr_missing_ms: 500 },
    cc: { cc_errors: 20, window_ms: 1000 },
    low: { bitrate_below_bps: 800000, for_ms: 3000 },
    p2: { tr101290: ["PCR_repetition_error", "PTS_error", "CRC_error"], count: 5, window_ms: 5000 },
    black: { black: { pixel_threshold: 0.1, picture_ratio: 0.98 }, for_ms: 3000 },
    frozen: { frozen: { noise_db: -60 }, for_ms: 6000 },
    silent: { silent: { noise_db: -60 }, for_ms: 3000 },
  },
  unhealthy_when: "no_video || no_pcr || cc || (black && silent) || frozen",
} as const;
