/**
 * A channel's slate, as the API takes it and the store keeps it: off (`null`, the default) or on, with the
 * time after the last input went silent at which it starts (`after_ms`, never before the failover time, so a
 * backup always gets its chance first), the picture (an uploaded PNG or JPEG; none: a generated card with the
 * channel's name and "back shortly"), whether an operator put the channel on it by hand, and how long a
 * channel may stay on it before the alert fires.
 */
import * as Schema from "effect/Schema";
import { intRange } from "../base/ints.ts";

const strict = { parseOptions: { onExcessProperty: "error" } } as const;

/** The longest an uploaded slate picture may be, in bytes. */
export const MAX_SLATE_IMAGE_BYTES = 2 * 1024 * 1024;

/** An uploaded picture: checked when it came (src/core/slate/image.ts), kept whole (base64) with the channel. */
export const SlateImage = Schema.Struct({
  type: Schema.Literal("image/png", "image/jpeg"),
  width: Schema.Number,
  height: Schema.Number,
  bytes: Schema.Number,
  sha256: Schema.String,
  data: Schema.String.annotations({ description: "the picture, base64; left out of API answers" }),
}).annotations({ identifier: "SlateImage" });
export type SlateImage = typeof SlateImage.Type;

const SlateAfterMs = intRange(50, 3_600_000).annotations({
  description:
    "ms after the last input went silent at which the slate starts; at least the channel's failover_after_ms",
});

/**
 * Why a channel is on its slate: every input silent, an operator, every input unhealthy by its health rules, or
 * its schedule (the preroll and postroll of a scheduled window).
 */
export const SLATE_REASONS = ["input_lost", "manual", "unhealthy", "scheduled"] as const;
export type SlateReason = (typeof SLATE_REASONS)[number];

const SlateOnUnhealthy = Schema.Boolean.annotations({
  description:
    "true: when every input is unhealthy by the channel's health rules (redundancy.health), the slate goes on until one is healthy again; default false (the channel stays on its input)",
});

const SlateAlertAfterS = intRange(10, 86_400).annotations({
  description: "seconds on the slate after which the SlateTooLong alert fires; default 300",
});

export const SlateConfig = Schema.Struct({
  after_ms: SlateAfterMs,
  alert_after_s: Schema.optional(SlateAlertAfterS),
  on_unhealthy: Schema.optional(SlateOnUnhealthy),
  /** Put on the slate by an operator (POST /api/channels/{id}/slate), kept until taken off. */
  manual: Schema.optional(Schema.Boolean),
  /** Put on by the channel's schedule (its preroll and postroll), lifted by it; an operator's hand stays apart. */
  scheduled: Schema.optional(Schema.Boolean),
  image: Schema.optional(Schema.NullOr(SlateImage)),
}).annotations({ identifier: "SlateConfig", ...strict });
export type SlateConfig = typeof SlateConfig.Type;

/** What a POST or PATCH may say of the slate: its times. The picture comes by PUT .../slate/image. */
export const SlateBody = Schema.NullOr(
  Schema.Struct({
    after_ms: SlateAfterMs,
    alert_after_s: Schema.optional(SlateAlertAfterS),
    on_unhealthy: Schema.optional(SlateOnUnhealthy),
  }).annotations({ identifier: "SlateBody", ...strict }),
).annotations({
  description:
    'null: no slate (the default); {"after_ms": 1000}: the slate starts 1 s after every input went silent',
});
export type SlateBody = typeof SlateBody.Type;

export const SlateSwitchBody = Schema.Struct({
  on: Schema.Boolean.annotations({
    description: "true puts the channel on the slate now; false takes it off",
  }),
}).annotations({ identifier: "SlateSwitchBody", ...strict });

/** The default time on the slate before the alert fires. */
const DEFAULT_SLATE_ALERT_AFTER_S = 300;

/**
 * The slate a body asks for, on top of what is stored: what it gives replaces (its times; an import of our
 * export also brings the picture and the hand switch), the rest stays.
 */
export const slateFromBody = (
  body: SlateBody | SlateConfig | undefined,
  stored: SlateConfig | null | undefined,
): SlateConfig | null => {
  if (body === undefined) return stored ?? null;
  if (body === null) return null;
  return { ...(stored ?? {}), ...body };
};

/** What the API shows of a stored slate: everything but the picture's bytes. */
export const slateView = (slate: SlateConfig | null | undefined, channelId: string) =>
  slate == null
    ? null
    : {
        after_ms: slate.after_ms,
        alert_after_s: slate.alert_after_s ?? DEFAULT_SLATE_ALERT_AFTER_S,
        manual: slate.manual ?? false,
        scheduled: slate.scheduled ?? false,
        on_unhealthy: slate.on_unhealthy ?? false,
        image:
          slate.image == null
            ? null
            : {
                type: slate.image.type,
                width: slate.image.width,
                height: slate.image.height,
                bytes: slate.image.bytes,
                sha256: slate.image.sha256,
                url: `/api/channels/${channelId}/slate/image`,
              },
      };
