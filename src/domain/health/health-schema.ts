/**
 * The shape of `redundancy.health` as the API takes it and the store keeps it: named rules and the expression
 * over them (what they mean and how the expression reads: health.ts, which the forwarding threads load without
 * Schema).
 */
import * as Schema from "effect/Schema";
import { intBetween } from "../base/ints.ts";
import { oneOf } from "../base/literals.ts";

/** The TR 101 290 priority 2 indicators a rule may count. */
export const P2_INDICATORS = [
  "Transport_error",
  "CRC_error",
  "PCR_repetition_error",
  "PCR_discontinuity_indicator_error",
  "PTS_error",
] as const;
export type P2Indicator = (typeof P2_INDICATORS)[number];

const ratio = Schema.Number.annotations({ message: () => "must be a number from 0 to 1" }).pipe(
  Schema.between(0, 1, { message: () => "must be a number from 0 to 1" }),
);
const noiseDb = Schema.Number.annotations({ message: () => "must be a level in dB from -120 to 0" }).pipe(
  Schema.between(-120, 0, { message: () => "must be a level in dB from -120 to 0" }),
);
const FOR_MS = intBetween(100, 600_000);
const WINDOW_MS = intBetween(100, 600_000);

/** One rule: which measure, its threshold, and for how long (or within what window) it must hold. */
export const HealthRuleSchema = Schema.Union(
  Schema.Struct({
    pid_missing: Schema.Union(oneOf("video", "audio"), intBetween(0x20, 0x1ffe)),
    for_ms: FOR_MS,
  }),
  Schema.Struct({ pcr_missing_ms: intBetween(40, 60_000) }),
  Schema.Struct({ pts_missing_ms: intBetween(100, 60_000) }),
  Schema.Struct({ cc_errors: intBetween(1, 1_000_000), window_ms: WINDOW_MS }),
  Schema.Struct({ bitrate_below_bps: intBetween(1_000, 1_000_000_000), for_ms: FOR_MS }),
  Schema.Struct({
    tr101290: Schema.Array(oneOf(...P2_INDICATORS)).pipe(Schema.minItems(1)),
    count: intBetween(1, 1_000_000),
    window_ms: WINDOW_MS,
    /** PCR_repetition_error's limit: 100 ms (ISO/IEC 13818-1), or 40 ms as DVB's measurement guide has it. */
    limits: Schema.optional(oneOf("mpeg", "dvb")),
  }),
  Schema.Struct({
    black: Schema.Struct({ pixel_threshold: ratio, picture_ratio: ratio }),
    for_ms: FOR_MS,
  }),
  Schema.Struct({ frozen: Schema.Struct({ noise_db: noiseDb }), for_ms: FOR_MS }),
  Schema.Struct({ silent: Schema.Struct({ noise_db: noiseDb }), for_ms: FOR_MS }),
).annotations({
  message: () => ({
    message:
      "must be one rule: {pid_missing, for_ms}, {pcr_missing_ms}, {pts_missing_ms}, {cc_errors, window_ms}, " +
      "{bitrate_below_bps, for_ms}, {tr101290: [...], count, window_ms}, {black: {pixel_threshold, " +
      "picture_ratio}, for_ms}, {frozen: {noise_db}, for_ms} or {silent: {noise_db}, for_ms}",
    override: false,
  }),
});
export type HealthRule = typeof HealthRuleSchema.Type;

/** `redundancy.health` as stored and as the API takes it. */
export const HealthConfigSchema = Schema.Struct({
  rules: Schema.Record({ key: Schema.String, value: HealthRuleSchema }),
  unhealthy_when: Schema.String,
  clear_after_ms: Schema.optional(intBetween(0, 3_600_000)),
  /**
   * What the picture-and-sound watcher decodes: key frames only (the default, a fraction of the cost; a frozen
   * rule then needs for_ms of at least 1.5 GOPs) or every picture.
   */
  decode: Schema.optional(oneOf("key_frames", "all_frames")),
});
export type HealthConfig = typeof HealthConfigSchema.Type;
