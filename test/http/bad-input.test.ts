/**
 * Bad requests: each gets the right status and a problem+json whose detail names the problem, and the store
 * is exactly as it was before.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_CHANNEL_JSON_BYTES, PROTOCOLS } from "../../src/domain/channel/channel.ts";
import { json, useTestApp } from "../support/app.ts";

const app = useTestApp();
beforeAll(async () => {
  const setup = [
    ["/api/channels", { id: "base", name: "Base", rtp_ip: "127.0.0.1", rtp_port: 6000 }],
    [
      "/api/channels",
      { id: "fec", name: "FEC", rtp_ip: "127.0.0.1", rtp_port: 6100, redundancy: { fec: true } },
    ],
    ["/api/channels/base/outputs", { id: "out1", protocol: "udp", url: "udp://127.0.0.1:7000" }],
  ] as const;
  for (const [path, body] of setup) {
    const response = await app.request(path, { method: "POST", body: JSON.stringify(body) });
    expect(response.status, JSON.stringify(await response.clone().json())).toBe(201);
  }
});

interface Case {
  readonly name: string;
  readonly method?: string;
  readonly path?: string;
  readonly body: unknown;
  readonly status: number;
  /** Text the detail must contain. */
  readonly mentions: string;
}

const channel = (fields: Record<string, unknown>) => ({
  name: "C",
  rtp_ip: "127.0.0.1",
  rtp_port: 6500,
  ...fields,
});
const output = (fields: Record<string, unknown>) => ({
  path: "/api/channels/base/outputs",
  body: { protocol: "udp", url: "udp://127.0.0.1:7001", ...fields },
});
const srt = (query: string) => output({ protocol: "srt", url: `srt://127.0.0.1:9000?${query}` });
const raw = Symbol("raw");

const cases: ReadonlyArray<Case> = [
  {
    name: "port above range",
    body: channel({ rtp_port: 70000 }),
    status: 400,
    mentions: "rtp_port: must be an integer from 1 to 65535, got 70000",
  },
  { name: "port zero", body: channel({ rtp_port: 0 }), status: 400, mentions: "rtp_port" },
  { name: "port as a string", body: channel({ rtp_port: "5000" }), status: 400, mentions: "rtp_port" },
  { name: "fractional port", body: channel({ rtp_port: 5000.5 }), status: 400, mentions: "rtp_port" },
  {
    name: "negative backup port",
    body: channel({ backup_rtp_port: -1 }),
    status: 400,
    mentions: "backup_rtp_port",
  },
  { name: "bad IPv4", body: channel({ rtp_ip: "999.1.1.1" }), status: 400, mentions: "rtp_ip" },
  { name: "host name as input", body: channel({ rtp_ip: "example.com" }), status: 400, mentions: "rtp_ip" },
  {
    name: "broadcast input",
    body: channel({ rtp_ip: "255.255.255.255" }),
    status: 400,
    mentions: "broadcast",
  },
  { name: "empty name", body: channel({ name: "" }), status: 400, mentions: "name: must not be empty" },
  { name: "long name", body: channel({ name: "x".repeat(101) }), status: 400, mentions: "at most 100" },
  { name: "control character in name", body: channel({ name: "a\nb" }), status: 400, mentions: "control" },
  {
    name: "missing name",
    body: { rtp_ip: "127.0.0.1", rtp_port: 6500 },
    status: 400,
    mentions: "name: is required",
  },
  {
    // Unknown fields are ignored as the original API ignored them; the required one is still missing.
    name: "misspelt required field",
    body: { name: "C", rtp_ip: "127.0.0.1", rtp_prot: 6500 },
    status: 400,
    mentions: "rtp_port: is required",
  },
  { name: "not JSON", body: { [raw]: "{name:" }, status: 400, mentions: "not valid JSON" },
  { name: "empty body", body: { [raw]: "" }, status: 400, mentions: "empty" },
  {
    name: "JSON nested 4000 levels deep (under the body limit)",
    body: {
      [raw]: `{"name":"x","rtp_ip":"127.0.0.1","rtp_port":5000,"extra":${'{"a":'.repeat(4000)}1${"}".repeat(4000)}}`,
    },
    status: 400,
    mentions: "nested",
  },
  { name: "array body", body: [1, 2], status: 400, mentions: "(body)" },
  {
    name: "backup address without port",
    body: channel({ backup_rtp_ip: "127.0.0.2" }),
    status: 400,
    mentions: "backup_rtp_port: is required",
  },
  {
    name: "backup equal to primary",
    body: channel({ backup_rtp_port: 6500 }),
    status: 400,
    mentions: "overlaps",
  },
  {
    name: "input used by another channel",
    body: channel({ rtp_port: 6000 }),
    status: 409,
    mentions: "already used by channel 'Base'",
  },
  {
    name: "wildcard input over another channel",
    body: channel({ rtp_ip: "0.0.0.0", rtp_port: 6000 }),
    status: 409,
    mentions: "already used",
  },
  {
    name: "input on another channel's FEC port",
    body: channel({ rtp_port: 6102 }),
    status: 409,
    mentions: "FEC column",
  },
  {
    name: "FEC port+4 on another channel's input",
    body: channel({ rtp_port: 5996, redundancy: { fec: true } }),
    status: 409,
    mentions: "FEC row",
  },
  {
    name: "FEC beyond the last port",
    body: channel({ rtp_port: 65533, redundancy: { fec: true } }),
    status: 400,
    mentions: "leaves no room",
  },
  {
    name: "unknown redundancy mode",
    body: channel({ redundancy: { mode: "bogus" } }),
    status: 400,
    mentions: "redundancy.mode",
  },
  {
    name: "unknown redundancy field",
    body: channel({ redundancy: { failover: 1 } }),
    status: 400,
    mentions: "redundancy.failover",
  },
  {
    name: "a health expression naming a rule that is not there",
    body: channel({
      redundancy: {
        health: {
          rules: { black: { black: { pixel_threshold: 0.1, picture_ratio: 0.98 }, for_ms: 3000 } },
          unhealthy_when: "black && silent",
        },
      },
    }),
    status: 400,
    mentions: "redundancy.health.unhealthy_when: names 'silent', which is not a rule: the rules are black",
  },
  {
    name: "a health expression that does not parse",
    body: channel({
      redundancy: { health: { rules: { no_pcr: { pcr_missing_ms: 500 } }, unhealthy_when: "no_pcr ||" } },
    }),
    status: 400,
    mentions: "redundancy.health.unhealthy_when: expected a rule name, ! or ( at the end",
  },
  {
    name: "a health rule of no known shape",
    body: channel({
      redundancy: { health: { rules: { odd: { pcr_missing: 500 } }, unhealthy_when: "odd" } },
    }),
    status: 400,
    mentions: "redundancy.health.rules",
  },
  {
    name: "a watcher's decoding that is not one of its two",
    body: channel({
      redundancy: {
        health: {
          rules: { no_pcr: { pcr_missing_ms: 500 } },
          unhealthy_when: "no_pcr",
          decode: "some_frames",
        },
      },
    }),
    status: 400,
    mentions: 'redundancy.health.decode: must be one of key_frames, all_frames; got "some_frames"',
  },
  {
    name: "health rules in merge mode",
    body: channel({
      backup_rtp_ip: "127.0.0.1",
      backup_rtp_port: 6502,
      redundancy: {
        mode: "merge",
        health: { rules: { no_pcr: { pcr_missing_ms: 500 } }, unhealthy_when: "no_pcr" },
      },
    }),
    status: 400,
    mentions: "in mode merge both are at once",
  },
  {
    name: "duplicate channel id",
    body: channel({ id: "base", rtp_port: 6600 }),
    status: 409,
    mentions: "already exists",
  },
  {
    name: "file: URL where recording is off",
    ...output({ protocol: "file", url: "file:///etc/passwd" }),
    status: 400,
    mentions: "recording to files is off on this server",
  },
  { name: "concat: URL", ...output({ url: "concat:a|b" }), status: 400, mentions: "'|'" },
  { name: "option as URL", ...output({ url: "-f" }), status: 400, mentions: "must not start with '-'" },
  {
    name: "shell in a stream key",
    ...output({ protocol: "rtmp", url: "rtmp://x/app/key;rm -rf" }),
    status: 400,
    mentions: "whitespace",
  },
  {
    name: "semicolon in a stream key",
    ...output({ protocol: "rtmp", url: "rtmp://x/app/key;rm" }),
    status: 400,
    mentions: "';'",
  },
  {
    name: "command substitution",
    ...output({ protocol: "rtmp", url: "rtmp://x/app/$(reboot)" }),
    status: 400,
    mentions: "'$'",
  },
  {
    name: "trailing space in URL",
    ...output({ url: "udp://127.0.0.1:7001 " }),
    status: 400,
    mentions: "whitespace",
  },
  {
    name: "newline in URL",
    ...output({ url: "udp://127.0.0.1:7001\n-f" }),
    status: 400,
    mentions: "control",
  },
  { name: "protocol and scheme differ", ...output({ protocol: "srt" }), status: 400, mentions: "must match" },
  {
    name: "unsupported protocol",
    ...output({ protocol: "http", url: "http://x/" }),
    status: 400,
    // One line that lists what is accepted, not an "Expected …" per protocol.
    mentions: `protocol: must be one of ${PROTOCOLS.join(", ")}; got "http"`,
  },
  {
    name: "FEC neither a flag nor per input",
    body: channel({ redundancy: { fec: "yes" } }),
    status: 400,
    mentions:
      'redundancy.fec: must be true, false or {"primary": true|false, "backup": true|false}; got "yes"',
  },
  {
    name: "short SRT passphrase",
    ...srt("passphrase=short"),
    status: 400,
    mentions: "passphrase must be 10 to 79",
  },
  {
    name: "bad SRT pbkeylen",
    ...srt("passphrase=0123456789ab&pbkeylen=20"),
    status: 400,
    mentions: "pbkeylen",
  },
  { name: "SRT latency out of range", ...srt("latency=999999"), status: 400, mentions: "latency" },
  { name: "SRT mode", ...srt("mode=rendezvous"), status: 400, mentions: "mode must be caller or listener" },
  { name: "unknown SRT parameter", ...srt("foo=1"), status: 400, mentions: "unknown parameter 'foo'" },
  {
    name: "RTMP without stream key",
    ...output({ protocol: "rtmp", url: "rtmp://host/app" }),
    status: 400,
    mentions: "stream key",
  },
  {
    name: "UDP port out of range",
    ...output({ url: "udp://127.0.0.1:99999" }),
    status: 400,
    mentions: "url",
  },
  {
    name: "misspelt output field",
    path: "/api/channels/base/outputs",
    body: { protocol: "udp", urll: "udp://127.0.0.1:7001" },
    status: 400,
    mentions: "url: is required",
  },
  {
    name: "empty string in a required field",
    body: channel({ rtp_ip: "" }),
    status: 400,
    mentions: "rtp_ip",
  },
  { name: "duplicate output id", ...output({ id: "out1" }), status: 409, mentions: "already exists" },
  {
    name: "unknown channel",
    method: "GET",
    path: "/api/channels/nope",
    body: undefined,
    status: 404,
    mentions: "'nope'",
  },
  {
    name: "unknown output",
    method: "PUT",
    path: "/api/channels/base/outputs/nope",
    body: { protocol: "udp", url: "udp://127.0.0.1:7002" },
    status: 404,
    mentions: "nope",
  },
  {
    name: "patch output to a mismatched protocol",
    method: "PATCH",
    path: "/api/channels/base/outputs/out1",
    body: { protocol: "rtmp" },
    status: 400,
    mentions: "must match",
  },
  {
    name: "patch output with unknown field",
    method: "PATCH",
    path: "/api/channels/base/outputs/out1",
    body: { enable: false },
    status: 400,
    mentions: "enable: is not a known field",
  },
  {
    name: "patch channel onto a used port",
    method: "PATCH",
    path: "/api/channels/base",
    body: { rtp_port: 6104 },
    status: 409,
    mentions: "FEC row",
  },
  {
    name: "token with unknown role",
    path: "/api/tokens",
    body: { name: "t", role: "root" },
    status: 400,
    mentions: "role",
  },
  {
    name: "switch to an unknown input",
    path: "/api/channels/base/input",
    body: { active: "tertiary" },
    status: 400,
    mentions: "active",
  },
  {
    name: "switch inputs of a stopped channel",
    path: "/api/channels/base/input",
    body: { active: "backup" },
    status: 409,
    mentions: "not running",
  },
  {
    name: "import with a bad channel",
    path: "/api/config",
    body: { version: 1, channels: [channel({ rtp_port: -5 })] },
    status: 400,
    mentions: "channels[0].rtp_port",
  },
  {
    name: "import of an empty document",
    path: "/api/config",
    body: {},
    status: 400,
    mentions: "nothing to import",
  },
  {
    name: "import of a list",
    path: "/api/config",
    body: [],
    status: 400,
    mentions: "not a configuration document",
  },
  {
    name: "import of an original file with a key that cannot be a channel id",
    path: "/api/config",
    body: { [raw]: '{"__proto__": {"config": {"name": "x", "rtp_ip": "0.0.0.0", "rtp_port": 5000}}}' },
    status: 400,
    mentions: "__proto__",
  },
  {
    name: "import with an unknown mode",
    path: "/api/config?mode=wipe",
    body: { version: 1, channels: [] },
    status: 400,
    mentions: "mode",
  },
  {
    name: "import of a masked URL",
    path: "/api/config",
    body: { version: 1, channels: [channel({ outputs: [{ protocol: "rtmp", url: "rtmp://h/app/****" }] })] },
    status: 400,
    mentions: "masked",
  },
  {
    name: "body over what one channel can take",
    body: { [raw]: JSON.stringify(channel({ name: "x".repeat(MAX_CHANNEL_JSON_BYTES) })) },
    status: 413,
    mentions: `over ${Math.round(MAX_CHANNEL_JSON_BYTES / 1024)} KiB`,
  },
];

describe("bad requests", () => {
  it("the table is large enough", () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases)("$name → $status", async (testCase) => {
    const before = await app.storeText();
    const body = testCase.body as Record<symbol, string> | undefined;
    const text =
      body === undefined ? undefined : raw in (body as object) ? body[raw] : JSON.stringify(testCase.body);
    const response = await app.request(testCase.path ?? "/api/channels", {
      method: testCase.method ?? "POST",
      ...(text === undefined ? {} : { body: text }),
    });
    const problem = await json(response);
    expect(response.status, JSON.stringify(problem)).toBe(testCase.status);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(problem).toMatchObject({
      status: testCase.status,
      title: expect.any(String),
      type: expect.any(String),
    });
    expect(String(problem.detail)).toContain(testCase.mentions);
    if (testCase.status === 400 && !["not JSON", "empty body"].includes(testCase.name)) {
      expect(problem.errors).toEqual(
        expect.arrayContaining([expect.objectContaining({ field: expect.any(String) })]),
      );
    }
    expect(await app.storeText()).toBe(before);
  });
});
