import { PacketCore } from "../../src/core/packet-core.ts";
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
