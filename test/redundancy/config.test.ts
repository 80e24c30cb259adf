import { describe, expect, it, layer } from "@effect/vitest";
import { Effect, Either, Schema } from "effect";
import { ChannelId } from "../../src/domain/base/ids.ts";
import { resolveRedundancy } from "../../src/domain/channel/redundancy.ts";
import { RedundancyConfigSchema } from "../../src/domain/channel/redundancy-schema.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { freeUdpPort } from "../support/peers.ts";

const primary = { ip: "127.0.0.1", port: 5000 };
const backup = { ip: "127.0.0.1", port: 5010 };

describe("redundancy settings", () => {
  it("defaults to MediaConnect's figures, failover with a backup and none without", () => {
    expect(resolveRedundancy(undefined, { primary, backup })).toEqual(
      Either.right({
        mode: "failover",
        failover_after_ms: 500,
        revert: "auto",
        revert_after_ms: 10_000,
        merge_window_ms: 200,
        fec: { primary: false, backup: false },
        health: null,
      }),
    );
    const alone = resolveRedundancy({ mode: "failover", fec: true }, { primary, backup: null });
    expect(alone).toMatchObject(Either.right({ mode: "none", fec: { primary: true, backup: false } }));
  });

  it("names the field of every problem", () => {
    const result = resolveRedundancy(
      { mode: "merge", failover_after_ms: 10, merge_window_ms: 1.5, fec: { primary: true, backup: true } },
      { primary: { ip: "127.0.0.1", port: 65_533 }, backup: null },
    );
    expect(Either.isLeft(result) ? result.left : []).toEqual([
      { field: "redundancy.failover_after_ms", message: "must be an integer from 50 to 60000, got 10" },
      { field: "redundancy.merge_window_ms", message: "must be an integer from 1 to 10000, got 1.5" },
      {
        field: "redundancy.mode",
        message:
          "merge needs a backup input carrying the same RTP stream; add backup_rtp_ip and backup_rtp_port",
      },
      { field: "redundancy.fec.backup", message: "there is no backup input to take FEC for" },
      {
        field: "redundancy.fec.primary",
        message: "FEC listens on the primary port + 2 and + 4; port 65533 leaves no room",
      },
    ]);
  });

  it("refuses FEC ports that another input already uses", () => {
    const result = resolveRedundancy({ fec: true }, { primary, backup: { ip: "127.0.0.1", port: 5002 } });
    expect(Either.isLeft(result) && result.left.map((issue) => issue.message)).toContainEqual(
      "the primary FEC column stream would use 127.0.0.1:5002, which the backup input uses",
    );
  });

  it("the schema accepts a partial body and refuses out-of-range values", () => {
    const decode = Schema.decodeUnknownEither(RedundancyConfigSchema);
    expect(Either.isRight(decode({ mode: "merge", merge_window_ms: 100 }))).toBe(true);
    expect(Either.isLeft(decode({ revert_after_ms: -1 }))).toBe(true);
    expect(Either.isLeft(decode({ mode: "hitless" }))).toBe(true);
  });
});

layer(Channels.Test, { excludeTestServices: true })("redundancy through the supervisor", (it) => {
  it.scoped("refuses bad settings at start and a switch where there is nothing to switch to", () =>
    Effect.gen(function* () {
      const channels = yield* Channels;
      const port = yield* freeUdpPort;
      const refused = yield* Effect.flip(
        channels.start({
          id: ChannelId.make("bad"),
          name: "bad",
          primary: { ip: "127.0.0.1", port },
          backup: null,
          redundancy: { mode: "merge" },
          outputs: [],
        }),
      );
      expect(refused.reason).toBe("invalid_redundancy");
      expect(refused.message).toContain("redundancy.mode");
      expect(channels.state(ChannelId.make("bad"))).toBe("error");

      yield* channels.start({
        id: ChannelId.make("alone"),
        name: "alone",
        primary: { ip: "127.0.0.1", port },
        backup: null,
        outputs: [],
      });
      const switched = yield* Effect.flip(channels.switchInput(ChannelId.make("alone"), "backup"));
      expect(switched).toMatchObject({ reason: "invalid_switch" });
      expect(switched.message).toContain("no backup input");
      expect(yield* channels.status(ChannelId.make("alone"))).toMatchObject({
        input: "lost",
        redundancy: { mode: "none", failovers: 0 },
      });
      const missing = yield* Effect.flip(channels.switchInput(ChannelId.make("nope"), "backup"));
      expect(missing.reason).toBe("not_running");
    }),
  );
});
