import { PacketCore } from "../../src/core/packet-core.ts";
import { NULL_PID, PACKET, pidAt } from "../../src/core/ts/packet.ts";
import { writePid } from "../../src/core/ts/section.ts";
import { STREAM_TYPE_SCTE35 } from "../../src/core/ts/stream-types.ts";
import { chunkTs } from "./sender.ts";

export interface Analysis {
  readonly ccErrors: number;
  /** SCTE-35 sections, base64, in the order they came. */
  readonly sections: ReadonlyArray<string>;
  /** Every PID seen, as "pid:streamType". */
  readonly pids: ReadonlyArray<string>;
}

/** CC errors, SCTE-35 sections and PIDs in a TS byte stream, as our own packet core reads them. */
export const analyse = (ts: Uint8Array): Analysis => {
  const core = PacketCore.load();
  const sections: string[] = [];
  for (const chunk of chunkTs(ts)) {
    core.push(chunk);
    core.drainEvents((event) => {
      if (event.type === "scte35") sections.push(Buffer.from(event.section).toString("base64"));
    });
  }
  const snapshot = core.snapshot();
  return {
    ccErrors: snapshot.tr101290.ccErrors,
    sections,
    pids: snapshot.pids.map((pid) => `${pid.pid}:${pid.streamType}`),
  };
};

/** A copy of `ts` whose SCTE-35 packets are null packets: the same stream and pace, without a cue. */
export const withoutCues = (ts: Uint8Array): Buffer => {
  const cuePids = new Set(
    analyse(ts)
      .pids.filter((entry) => Number(entry.split(":")[1]) === STREAM_TYPE_SCTE35)
      .map((entry) => Number(entry.split(":")[0])),
  );
  const copy = Buffer.from(ts);
  for (let at = 0; at + PACKET <= copy.length; at += PACKET)
    if (cuePids.has(pidAt(copy, at))) writePid(copy, at + 1, NULL_PID);
  return copy;
};
