/**
 * The control plane's pure rules, called directly: what a channel must satisfy and the words a caller gets
 * when it does not, how a body becomes the stored channel, and how a PATCH, an added output and an original
 * `channels.json` entry change it. The loop rules have their own file (test/channel/output-loop-rule.test.ts).
 */
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { ControlError } from "../../src/domain/base/errors.ts";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import type { ChannelBody, ChannelConfig, OutputConfig } from "../../src/domain/channel/channel.ts";
import { checkChannel } from "../../src/domain/channel/channel-checks.ts";
import {
  buildChannel,
  buildOutput,
  fromOriginal,
  inputChanged,
  patchChannel,
  prefixed,
  unmask,
  withOutput,
} from "../../src/domain/channel/rules.ts";

const HOST = ["127.0.0.1", "10.1.2.3"];
const base = { desired: "stopped", created_at: "2026-01-01T00:00:00.000Z" } as const;

const built = (body: Record<string, unknown>, existing?: ChannelConfig) =>
  buildChannel({ name: "News", rtp_ip: "0.0.0.0", rtp_port: 5000, ...body } as ChannelBody, base, existing);

const channel = (body: Record<string, unknown>): ChannelConfig => {
  const result = built(body);
  if (Either.isLeft(result)) throw new Error(result.left.message);
  return result.right;
};

/** What a caller reads: each field with its message. */
const issues = (error: ControlError | undefined) =>
  error?.errors?.map((issue) => `${issue.field}: ${issue.message}`) ?? [];

describe("checkChannel", () => {
  it("takes a channel whose inputs are sound and free", () => {
    expect(checkChannel(channel({ id: "a", backup_rtp_port: 5010 }), [], HOST)).toBeUndefined();
  });

  it("asks for the backup's port when only the rest of the backup is given", () => {
    const noPort = { ...channel({ id: "a" }), backup_rtp_ip: "10.0.0.1" };
    expect(issues(checkChannel(noPort, [], HOST))).toEqual([
      "backup_rtp_port: is required when backup_rtp_ip is given",
    ]);
    const srt = { ...channel({ id: "a" }), backup_input_url: "srt://:7000?mode=listener" };
    expect(issues(checkChannel(srt, [], HOST))).toEqual([
      "backup_rtp_port: is required when backup_input_url is given (it names the backup)",
    ]);
    const allowList = { ...channel({ id: "a" }), backup_rtp_allowed_sources: ["10.0.0.9"] };
    expect(issues(checkChannel(allowList, [], HOST))).toEqual([
      "backup_rtp_allowed_sources: there is no backup input to allow senders for; add backup_rtp_port or leave this out",
    ]);
  });

  it("names the two sockets of one channel that overlap", () => {
    const same = channel({ id: "a", backup_rtp_ip: "127.0.0.1", backup_rtp_port: 5000 });
    const error = checkChannel(same, [], HOST);
    expect(error?.reason).toBe("invalid");
    expect(issues(error)).toEqual([
      "backup_rtp_port: the backup input on 127.0.0.1:5000 overlaps the primary input of the same channel",
    ]);
    const fec = channel({ id: "b", backup_rtp_port: 5002, redundancy: { fec: true } });
    expect(issues(checkChannel(fec, [], HOST))).toEqual([
      "backup_rtp_port: the backup input on 0.0.0.0:5002 overlaps the primary FEC column stream of the same channel",
    ]);
  });

  it("refuses an input another channel listens on, as a conflict naming that channel", () => {
    const other = channel({ id: "other", name: "Sport", rtp_ip: "127.0.0.1", rtp_port: 6000 });
    const mine = channel({ id: "mine", rtp_ip: "::", rtp_port: 6000 });
    const error = checkChannel(mine, [other], HOST);
    expect(error?.reason).toBe("conflict");
    expect(issues(error)).toEqual([
      "rtp_port: the primary input [::]:6000 is already used by channel 'Sport' (other) as its primary input",
    ]);
    expect(checkChannel(mine, [{ ...other, rtp_port: 6001 }], HOST)).toBeUndefined();
  });

  it("refuses an input where another channel's output sends, with that output's URL masked", () => {
    const relay = channel({
      id: "relay",
      name: "Relay",
      outputs: [{ name: "Back", protocol: "udp", url: "udp://127.0.0.1:7000" }],
    });
    const listener = channel({ id: "listener", rtp_port: 7000 });
    expect(issues(checkChannel(listener, [relay], HOST))).toEqual([
      "rtp_port: the primary input 0.0.0.0:7000 is where output 'Back' of channel 'Relay' (relay) sends (udp://127.0.0.1:7000): listening there would feed that output back into the service, a loop that multiplies the stream; choose another port",
    ]);
  });
});

describe("buildChannel", () => {
  it("gives a backup port alone the primary's address, and outputs generated names", () => {
    const result = channel({
      rtp_ip: "239.1.1.1",
      backup_rtp_port: 5010,
      outputs: [
        { protocol: "udp", url: "udp://10.0.0.1:1234" },
        { name: " ", protocol: "udp", url: "udp://10.0.0.1:1235" },
        { name: "CDN", protocol: "udp", url: "udp://10.0.0.1:1236", enabled: false },
      ],
    });
    expect(result.backup_rtp_ip).toBe("239.1.1.1");
    expect(result.outputs.map((output) => [output.name, output.enabled])).toEqual([
      ["Output 1", true],
      ["Output 2", true],
      ["CDN", false],
    ]);
    expect(result.redundancy).toEqual({});
    expect(result.desired).toBe("stopped");
  });

  it("refuses a masked URL it cannot stand for the stored one, naming each field", () => {
    const result = built({
      input_url: "srt://:7000?mode=listener&passphrase=****",
      outputs: [{ protocol: "rtmp", url: "rtmp://cdn.example/live/****" }],
    });
    expect(Either.isLeft(result) && issues(result.left)).toEqual([
      "outputs[0].url: is masked (****); give the full URL, or import onto the server it was exported from",
      "input_url: is masked (****); give the full URL, or import onto the server it was exported from",
    ]);
  });

  it("puts the stored URL back for the masked one a GET showed", () => {
    const stored = channel({
      id: "a",
      outputs: [{ id: "o1", protocol: "rtmp", url: "rtmp://cdn.example/live/secret-key" }],
    });
    const again = built(
      { id: "a", outputs: [{ id: "o1", protocol: "rtmp", url: "rtmp://cdn.example/live/****" }] },
      stored,
    );
    expect(Either.isRight(again) && again.right.outputs[0]?.url).toBe("rtmp://cdn.example/live/secret-key");
  });

  it("refuses two outputs with one id as a conflict", () => {
    const result = built({
      outputs: [
        { id: "o1", protocol: "udp", url: "udp://10.0.0.1:1234" },
        { id: "o1", protocol: "udp", url: "udp://10.0.0.1:1235" },
      ],
    });
    expect(Either.isLeft(result) && result.left.reason).toBe("conflict");
    expect(Either.isLeft(result) && issues(result.left)).toEqual([
      "outputs[1].id: output id 'o1' is used twice",
    ]);
  });
});

describe("unmask", () => {
  const stored = { url: "srt://cdn.example:9000?passphrase=0123456789abc" };
  it("keeps a URL without a mask as it is", () => {
    expect(unmask("udp://10.0.0.1:1234", stored, "url")).toEqual(Either.right("udp://10.0.0.1:1234"));
  });
  it("takes the masked stored URL for the stored one and refuses any other", () => {
    expect(unmask("srt://cdn.example:9000?passphrase=****", stored, "url")).toEqual(Either.right(stored.url));
    expect(unmask("srt://other.example:9000?passphrase=****", stored, "url")).toEqual(
      Either.left({
        field: "url",
        message: "is masked (****); give the full URL, or import onto the server it was exported from",
      }),
    );
  });
});

describe("patchChannel", () => {
  const stored = channel({
    id: "a",
    backup_rtp_port: 5010,
    backup_rtp_allowed_sources: ["10.0.0.9"],
    redundancy: { mode: "failover", failover_after_ms: 500 },
  });

  it("replaces what is given and keeps the rest", () => {
    const patched = patchChannel(stored, { name: "Sport", redundancy: { revert: "sticky" } });
    expect(patched.name).toBe("Sport");
    expect(patched.rtp_port).toBe(5000);
    expect(patched.redundancy).toEqual({ mode: "failover", failover_after_ms: 500, revert: "sticky" });
    expect(inputChanged(stored, patchChannel(stored, { name: "Sport" }))).toBe(false);
    expect(inputChanged(stored, patched)).toBe(true);
    expect(inputChanged(stored, patchChannel(stored, { rtp_port: 5001 }))).toBe(true);
  });

  it("removes the backup and its allow-list when either half is cleared", () => {
    const patched = patchChannel(stored, { backup_rtp_port: null });
    expect([patched.backup_rtp_ip, patched.backup_rtp_port, patched.backup_rtp_allowed_sources]).toEqual([
      null,
      null,
      null,
    ]);
  });

  it("keeps the stored input URL for a masked one", () => {
    const srt = { ...stored, input_url: "srt://:7000?mode=listener&passphrase=0123456789abc" };
    expect(patchChannel(srt, { input_url: "srt://:7000?mode=listener&passphrase=****" }).input_url).toBe(
      srt.input_url,
    );
    expect(patchChannel(srt, { input_url: null }).input_url).toBeNull();
  });
});

describe("outputs", () => {
  const first = buildOutput({ protocol: "udp", url: "udp://10.0.0.1:1234" }, []);
  it("adds an output, or puts it in place of the one with its id", () => {
    const base1 = withOutput(channel({ id: "a" }), first);
    const renamed: OutputConfig = { ...first, name: "CDN" };
    expect(withOutput(base1, renamed).outputs).toEqual([renamed]);
    const second = buildOutput({ protocol: "udp", url: "udp://10.0.0.1:1235" }, base1.outputs);
    expect(withOutput(base1, second).outputs.map((output) => output.name)).toEqual(["Output 1", "Output 2"]);
  });
  it("keeps a replaced output's id, name and enabled flag unless the body gives them", () => {
    const disabled = { ...first, enabled: false, name: "CDN" };
    const replaced = buildOutput({ protocol: "udp", url: "udp://10.0.0.2:1234" }, [], disabled);
    expect(replaced).toEqual({ ...disabled, url: "udp://10.0.0.2:1234" });
  });
});

describe("fromOriginal and prefixed", () => {
  it("reads a channel of the original channels.json as an import of ours", () => {
    const id = ChannelId.make("5e2f0c1a-0000-4000-8000-000000000000");
    const imported = fromOriginal(
      id,
      { config: { name: "News", rtp_ip: "0.0.0.0", rtp_port: 5000 }, created_at: "2024-01-01T00:00:00Z" },
      [
        { id: "o1", protocol: "udp", url: "udp://10.0.0.1:1234" },
        { protocol: "udp", url: "udp://10.0.0.1:1235" },
      ],
    );
    expect(imported).toEqual({
      id,
      name: "News",
      rtp_ip: "0.0.0.0",
      rtp_port: 5000,
      backup_rtp_ip: null,
      backup_rtp_port: null,
      outputs: [
        { id: OutputId.make("o1"), name: "", protocol: "udp", url: "udp://10.0.0.1:1234" },
        { name: "", protocol: "udp", url: "udp://10.0.0.1:1235" },
      ],
      created_at: "2024-01-01T00:00:00Z",
    });
  });

  it("puts every field of an error under a prefix, in its fields and its message", () => {
    const error = new ControlError({
      reason: "invalid",
      message: "rtp_port: taken",
      errors: [{ field: "rtp_port", message: "taken" }],
    });
    const moved = prefixed(error, "channels[2].");
    expect(moved.message).toBe("channels[2].rtp_port: taken");
    expect(moved.errors).toEqual([{ field: "channels[2].rtp_port", message: "taken" }]);
  });
});
