/**
 * An input that a link library receives rather than a plain UDP socket: RTMP (a publisher's FLV muxed as TS),
 * RIST (librist) or SRT (libsrt, a listener perhaps shared by stream id). Binds one in the input's own scope,
 * keeps its figures on the input, and reports its refused peers as events. The datagrams go to `fromLink`,
 * which the input path (input-path.ts) made when the input started listening.
 */
import * as Effect from "effect/Effect";
import * as Scope from "effect/Scope";
import {
  REFUSAL_EVENT_MS,
  refusalFields,
  type SrtRefusal,
  throttledRefusals,
} from "../runtime/links/srt-listeners.ts";
import type { InputPathOptions, InputRuntime } from "./input-types.ts";
import { bindRistInput, ristInputTarget } from "./rist-receiver.ts";
import { bindRtmpInput, type RtmpRefusal, rtmpInputTargetOf } from "./rtmp-receiver.ts";
import { bindSrtInput, srtInputTarget } from "./srt-receiver.ts";

/** Binds the link input at `url` (rtmp:, rtmps:, rist: or srt:) for `input`, in the input's scope. */
export const bindLinkInput = (
  input: InputRuntime,
  url: string,
  fromLink: (datagram: Buffer) => void,
  options: Pick<InputPathOptions, "channel" | "emit" | "ristSrpDir">,
) =>
  Effect.gen(function* () {
    const { channel, emit } = options;
    const { role, scope } = input;
    if (/^rtmps?:/i.test(url)) {
      // A publisher's FLV as TS, muxed per input so that its PMT and timeline outlive publishers. Refusals
      // told as SRT's are: at most one event per reason every REFUSAL_EVENT_MS (each is counted on the input).
      const refused = throttledRefusals(REFUSAL_EVENT_MS, (refusal: RtmpRefusal) =>
        emit({
          type: "rtmp_publish_refused",
          channel,
          input: role,
          publisher: refusal.publisher,
          reason: refusal.reason,
          message: `RTMP ${role} input: a publisher from ${refusal.publisher} was refused: ${refusal.message}`,
        }),
      );
      const target = yield* rtmpInputTargetOf(url);
      input.rtmp = (yield* bindRtmpInput(target, fromLink, refused).pipe(Scope.extend(scope))).figures;
    } else if (/^rist:/i.test(url)) {
      // As RTP carrying librist's sequence numbers: what the merge of two RIST inputs pairs.
      const target = yield* ristInputTarget(url);
      input.rist = (yield* bindRistInput(target, fromLink, "rtp", options.ristSrpDir ?? null).pipe(
        Scope.extend(scope),
      )).link;
    } else {
      // A caller refused by a listener shared by stream id: this input's, or (a stream id no channel
      // on the port has) the node's, with no channel.
      const told = (who: "input" | "node") => (refusal: SrtRefusal, refusals: number) =>
        emit({
          type: "srt_caller_refused",
          channel: who === "input" ? channel : null,
          input: who === "input" ? role : null,
          ...refusalFields(refusal, refusals),
          message: `${who === "input" ? `SRT ${role} input: ` : ""}${refusal.message}`,
        });
      input.srt = (yield* bindSrtInput(yield* srtInputTarget(url), fromLink, {
        refused: throttledRefusals(REFUSAL_EVENT_MS, told("input")),
        unrouted: throttledRefusals(REFUSAL_EVENT_MS, told("node")),
      }).pipe(Scope.extend(scope))).figures;
    }
  });
