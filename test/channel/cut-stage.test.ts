/**
 * A fleet hand-over on the forwarding thread (src/effects/channel/cut-stage.ts), two stages side by side as two
 * nodes' channels: the old holder cuts, the new holder begins after the cut from what it kept — the same stream
 * byte for byte, nothing lost or repeated — or, when the old holder named no cut (a node of the previous
 * release), from a margin before the moment it was told, repeating rather than losing.
 */
import { describe, expect, it } from "vitest";
import { type CutStage, MARGIN_MS, makeCutStage } from "../../src/effects/channel/cut-stage.ts";
import { monotonicMs } from "../../src/effects/runtime/sockets/send-gates.ts";

const datagram = (n: number) => {
  const bytes = new Uint8Array(7 * 188).fill(n & 0xff);
  for (let at = 0; at < bytes.length; at += 188) bytes.set([0x47, 0x01, 0x00, 0x10 | (n & 0x0f)], at);
  bytes[5] = (n >> 8) & 0xff;
  return bytes;
};

/** A stage and what its outputs got (the stream's numbers), live or sent from its ring. */
const node = () => {
  const sent: number[] = [];
  const at = (bytes: Uint8Array) => (bytes[4] ?? 0) | ((bytes[5] ?? 0) << 8);
  let gate = false;
  const stage: CutStage = makeCutStage({
    channelId: () => "ch",
    pass: (view) => {
      if (gate) sent.push(at(view));
    },
    rtpOutputs: () => [],
  });
  const open = (now: boolean) => {
    gate = now;
    stage.gate(now);
  };
  /** The input brings datagram n: the outputs get it when the stage says so (and the gate is open). */
  const input = (n: number) => {
    const view = datagram(n);
    if (stage.take(view) && gate) sent.push(at(view));
  };
  return { stage, sent, open, input };
};

describe("a hand-over between two nodes' channels", () => {
  it("agreed: the new holder sends from the datagram after the old holder's last, then live", async () => {
    const [a, b] = [node(), node()];
    a.open(true);
    for (let n = 0; n < 50; n++) for (const x of [a, b]) x.input(n);
    const cut = a.stage.cut();
    // No random access point in this stream: the old holder cuts at its bound, after what it has sent.
    for (let n = 50; n < 52; n++) for (const x of [a, b]) x.input(n);
    const made = await cut;
    a.open(false);
    expect(made.agreed?.hashes.length).toBe(8);
    b.stage.resume({
      mode: "agreed",
      cut: made.agreed ?? { hashes: [], anchor: null },
      pts: null,
      lastPts: {},
      rtp: {},
    });
    b.open(true);
    // Its outputs start: until then it keeps back what comes.
    for (let n = 52; n < 55; n++) for (const x of [a, b]) x.input(n);
    const resumed = await b.stage.resumed(1000);
    for (let n = 55; n < 60; n++) for (const x of [a, b]) x.input(n);
    expect(resumed).toMatchObject({ mode: "agreed", swallowed: 0 });
    const all = [...a.sent, ...b.sent];
    expect(all).toEqual(Array.from({ length: 60 }, (_, n) => n));
  }, 10_000);

  it("no cut (a holder of the previous release): the new holder begins a margin before it was told", async () => {
    const b = node();
    for (let n = 0; n < 40; n++) b.input(n);
    const told = monotonicMs();
    b.stage.resume({ mode: "margin", from: told - MARGIN_MS });
    b.open(true);
    const resumed = await b.stage.resumed(1000);
    // Everything came within the margin: all of it is sent again, none lost.
    expect(resumed).toMatchObject({ mode: "margin", replayed: 40 });
    b.input(40);
    expect(b.sent).toEqual(Array.from({ length: 41 }, (_, n) => n));
  });
});
