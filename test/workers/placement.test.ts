/**
 * Where channels go among the forwarding workers (src/effects/channel/workers/placement.ts), on plain figures:
 * forwarding-threads.test.ts shows the same decisions carried out on real threads.
 */
import { describe, expect, it } from "vitest";
import { placeChannel, planRebalance, type Seat } from "../../src/effects/channel/workers/placement.ts";

const seat = (index: number, started: boolean, share: number | null, channels: number): Seat => ({
  index,
  started,
  share,
  channels,
});

describe("placing a new channel", () => {
  it("keeps to one started worker while it is under the busy line", () => {
    const seats = [seat(0, true, 0.3, 40), seat(1, false, null, 0)];
    expect(placeChannel(seats, 0.8)?.index).toBe(0);
  });

  it("starts the next worker once every started one is busy", () => {
    const seats = [seat(0, true, 0.85, 40), seat(1, false, null, 0)];
    expect(placeChannel(seats, 0.8)?.index).toBe(1);
  });

  it("takes, of the workers under the line, the one with the fewest channels", () => {
    const seats = [seat(0, true, 0.5, 30), seat(1, true, 0.6, 12), seat(2, true, 0.9, 1)];
    expect(placeChannel(seats, 0.8)?.index).toBe(1);
  });

  it("gives the least busy worker the channel when all are started and busy", () => {
    const seats = [seat(0, true, 0.95, 30), seat(1, true, 0.85, 40)];
    expect(placeChannel(seats, 0.8)?.index).toBe(1);
  });

  it("spreads by count, started or not, with the busy line at 0", () => {
    const seats = [seat(0, true, 0.1, 3), seat(1, false, null, 0)];
    expect(placeChannel(seats, 0)?.index).toBe(1);
  });
});

describe("rebalancing", () => {
  const lines = { busy: 0.8, move: 0.8 };
  const channelsOf = (seat: Seat) => seat.channels;

  it("moves nothing while every worker is under the move line", () => {
    expect(planRebalance([seat(0, true, 0.7, 50), seat(1, true, 0.1, 5)], lines, channelsOf)).toBeNull();
  });

  it("moves from the busiest to a clearly calmer started worker as many as even the two out", () => {
    const plan = planRebalance([seat(0, true, 0.9, 50), seat(1, true, 0.3, 10)], lines, channelsOf);
    expect(plan).toMatchObject({ from: { index: 0 }, to: { index: 1 }, share: 0.9 });
    // 50 × (0.9 − 0.3) / (2 × 0.9) = 16.7 → 17
    expect(plan?.count).toBe(17);
  });

  it("starts the next worker when no started one is clearly calmer, and moves half to it", () => {
    const plan = planRebalance(
      [seat(0, true, 0.95, 40), seat(1, true, 0.8, 30), seat(2, false, null, 0)],
      lines,
      channelsOf,
    );
    expect(plan).toMatchObject({ from: { index: 0 }, to: { index: 2 }, count: 20 });
  });

  it("moves nothing from a busy worker with a single channel, nor with nowhere to go", () => {
    expect(planRebalance([seat(0, true, 0.95, 1), seat(1, false, null, 0)], lines, channelsOf)).toBeNull();
    expect(planRebalance([seat(0, true, 0.95, 9), seat(1, true, 0.9, 9)], lines, channelsOf)).toBeNull();
  });

  it("moves nothing with the busy line at 0 (channels are spread by count)", () => {
    expect(
      planRebalance([seat(0, true, 0.95, 9), seat(1, false, null, 0)], { busy: 0, move: 0.8 }, channelsOf),
    ).toBeNull();
  });
});
