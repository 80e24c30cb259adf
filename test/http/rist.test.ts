/**
 * RIST through the API, against librist's own tools: ristsender → our RIST input → a UDP output, and our RIST
 * outputs → ristreceiver, byte for byte with every SCTE-35 cue, in the main and the simple profile; a bad RIST
 * URL refused in words; the secret masked in every answer and export. EAP-SRP checked by our listeners against
 * a users' file made by Debian's ristsrppasswd (`srpfile=`): an input refuses a wrong password and an unknown
 * user (no data, and its status says which in words within 5 s) and takes the right one's stream byte for byte;
 * a listening output serves only the receiver that authenticates.
 */
import { Effect, Exit, Scope } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import {
  ADMIN_TOKEN,
  eventually,
  freeUdpPort,
  json,
  loginSession,
  makeTestApp,
  type TestApp,
} from "../support/app.ts";
import * as peers from "../support/peers.ts";
import {
  freeEvenPort,
  type RistToolOptions,
  ristReceiverPeer,
  ristSenderPeer,
  srpDir,
  srpFile,
} from "../support/rist-peers.ts";
import { collector, expectSame, primed, ristStreamWithCues } from "../support/rist-stream.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";

let app: TestApp | undefined;
let scope: Scope.CloseableScope | undefined;
afterEach(async () => {
  await app?.close();
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void));
  app = undefined;
  scope = undefined;
});

/** The app with a directory of srpfiles (DISTRIBUTARY_RIST_SRP_DIR), `srpDir`, removed after the test. */
const startApp = async () => {
  const open = Effect.runSync(Scope.make());
  scope = open;
  const inside = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
    Effect.runPromise(Scope.extend(effect, open));
  const dir = await inside(srpDir);
  app = await makeTestApp(undefined, undefined, { DISTRIBUTARY_RIST_SRP_DIR: dir });
  return { test: app, inside, srpDir: dir };
};

const secret = "rist-input-secret-0123";
const PASSWORD = "srp-right-password-77";

/** The `rist` object of a channel's primary input, as the API shows it. */
const ristLink = async (test: TestApp, channel: string) => {
  const view = await json(await test.request(`/api/channels/${channel}`));
  return (view.inputs as Array<{ rist: Record<string, unknown> | null }>)[0]?.rist ?? null;
};

/**
 * A ristsender the channel's RIST input turns away (`sender`: its port and what is wrong), the stream going to it
 * all along: `words` in the input's status within 5 s, and on the channel's page; the sender stopped after.
 */
const refusedSender = async (
  test: TestApp,
  channel: string,
  sender: Omit<RistToolOptions, "mode">,
  words: string,
) => {
  const senderScope = Effect.runSync(Scope.make());
  const peer = await Effect.runPromise(
    Scope.extend(ristSenderPeer({ mode: "connect", ...sender }), senderScope),
  );
  const sending = setInterval(
    () => void Effect.runPromise(sendPaced(chunkTs(ristStreamWithCues(76)).slice(0, 20), peer.udpPort)),
    100,
  );
  const startedAt = Date.now();
  try {
    // Two seconds of the stream going out first: the words must outlast a sender still starting.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const link = await eventually(`the words '${words}'`, async () => {
      const figures = await ristLink(test, channel);
      return figures?.problem === words ? figures : undefined;
    });
    const tookMs = Date.now() - startedAt;
    console.log(`RIST: '${words}' in the status after ${tookMs} ms`);
    expect(tookMs).toBeLessThan(5000);
    expect(link).toMatchObject({ received: 0, authenticated: false });
    const cookie = await loginSession(test, ADMIN_TOKEN, `/channels/${channel}`);
    const page = await test.request(`http://127.0.0.1/channels/${channel}`, {
      token: null,
      headers: { cookie },
    });
    expect(await page.text()).toContain(`primary: ${words.replaceAll("'", "&#39;")}`);
  } finally {
    clearInterval(sending);
    await Effect.runPromise(Scope.close(senderScope, Exit.void));
  }
};

describe("RIST through the API", () => {
  it("a bad RIST input URL is refused in words; ristsender → our input → UDP, byte for byte, the secret masked", async () => {
    const { test, inside } = await startApp();
    const port = await freeUdpPort();
    const refused = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        name: "bad",
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        input_url: `rist://@127.0.0.1:${port}?profile=simple&secret=${secret}`,
      }),
    });
    expect(refused.status).toBe(400);
    const problem = JSON.stringify(await json(refused));
    expect(problem).toContain("the simple profile has no encryption or authentication");
    expect(problem).not.toContain(secret);
    // Merge pairs copies by sequence number: a RIST input beside an RTP one numbers a stream of its own.
    const backupPort = await freeUdpPort();
    const merge = (backup: Record<string, unknown>) =>
      test.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          name: `merged ${JSON.stringify(backup)}`,
          rtp_ip: "127.0.0.1",
          rtp_port: port,
          input_url: `rist://@127.0.0.1:${port}`,
          backup_rtp_ip: "127.0.0.1",
          backup_rtp_port: backupPort,
          ...backup,
          redundancy: { mode: "merge" },
        }),
      });
    const mixed = await merge({});
    expect(mixed.status).toBe(400);
    expect((await json(mixed)).errors).toEqual([
      {
        field: "redundancy.mode",
        message:
          "merge pairs two copies of one stream by sequence number: both inputs RTP/UDP, or both RIST (one sender with a peer for each, weight=0); an SRT or RTMP input has no sequence numbers and a RIST input beside an RTP one numbers a stream of its own: use failover",
      },
    ]);
    const srt = await merge({ backup_input_url: `srt://:${backupPort}?mode=listener` });
    expect(srt.status).toBe(400);
    // Two RIST inputs carry the sender's own numbers: they merge (test/redundancy/rist-merge.test.ts).
    const both = await merge({ backup_input_url: `rist://@127.0.0.1:${backupPort}` });
    expect(both.status, await both.clone().text()).toBe(201);
    const deleted = await test.request(`/api/channels/${(await json(both)).id}`, { method: "DELETE" });
    expect(deleted.status).toBe(200);

    const got = collector();
    const sink = await inside(peers.udpReceiver(got.onDatagram));
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "rist-in",
        name: "RIST in",
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        input_url: `rist://@127.0.0.1:${port}?buffer=500&secret=${secret}&aes-type=256`,
        outputs: [{ name: "sink", protocol: "udp", url: `udp://127.0.0.1:${sink}` }],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await test.request("/api/channels/rist-in/start", { method: "POST" })).status).toBe(200);
    const sender = await inside(ristSenderPeer({ mode: "connect", port, secret, aesType: 256, buffer: 500 }));
    await inside(primed(sender.udpPort, got.primed));
    const ts = ristStreamWithCues(71);
    await Effect.runPromise(sendPaced(chunkTs(ts), sender.udpPort, 0.25));
    await eventually("the stream at the output", () => (got.bytes().length >= ts.length ? true : undefined));
    expectSame(got.bytes(), ts);

    const text = await (await test.request("/api/channels/rist-in")).text();
    expect(JSON.parse(text)).toMatchObject({
      input_url: `rist://@127.0.0.1:${port}?buffer=500&secret=****&aes-type=256`,
    });
    expect(text).not.toContain(secret);
    const exported = await (await test.request("/api/config")).text();
    expect(exported).toContain("secret=****");
    expect(exported).not.toContain(secret);
  });

  it("outputs, main profile: ours calls one ristreceiver and listens for another; each gets the stream byte for byte", async () => {
    const { test, inside } = await startApp();
    const input = await freeUdpPort();
    const [callTo, listenOn] = [await freeUdpPort(), await freeUdpPort()];
    const [a, b] = [collector(), collector()];
    const sinkA = await inside(peers.udpReceiver(a.onDatagram));
    const sinkB = await inside(peers.udpReceiver(b.onDatagram));
    await inside(ristReceiverPeer({ mode: "listen", port: callTo, udpPort: sinkA }));
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "rist-out",
        name: "RIST out",
        rtp_ip: "127.0.0.1",
        rtp_port: input,
        outputs: [
          { id: "caller", name: "caller", protocol: "rist", url: `rist://127.0.0.1:${callTo}` },
          { id: "listener", name: "listener", protocol: "rist", url: `rist://@127.0.0.1:${listenOn}` },
        ],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await test.request("/api/channels/rist-out/start", { method: "POST" })).status).toBe(200);
    await inside(ristReceiverPeer({ mode: "connect", port: listenOn, udpPort: sinkB }));
    await inside(primed(input, () => a.primed() && b.primed()));
    const ts = ristStreamWithCues(72);
    await Effect.runPromise(sendPaced(chunkTs(ts), input, 0.25));
    await eventually("the stream at both receivers", () =>
      a.bytes().length >= ts.length && b.bytes().length >= ts.length ? true : undefined,
    );
    expectSame(a.bytes(), ts);
    expectSame(b.bytes(), ts);
  });

  it("output, simple profile: ours calls ristreceiver, byte for byte; a simple-profile listener is refused in words", async () => {
    const { test, inside } = await startApp();
    const input = await freeUdpPort();
    const port = await Effect.runPromise(freeEvenPort);
    const got = collector();
    const sink = await inside(peers.udpReceiver(got.onDatagram));
    await inside(ristReceiverPeer({ mode: "listen", port, profile: "simple", udpPort: sink }));
    const body = (url: string) =>
      JSON.stringify({
        id: "rist-simple",
        name: "RIST simple",
        rtp_ip: "127.0.0.1",
        rtp_port: input,
        outputs: [{ id: "out", name: "out", protocol: "rist", url }],
      });
    const refused = await test.request("/api/channels", {
      method: "POST",
      body: body(`rist://@127.0.0.1:${port}?profile=simple`),
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await json(refused))).toContain(
      "in the simple profile a RIST output connects to its receiver",
    );
    const created = await test.request("/api/channels", {
      method: "POST",
      body: body(`rist://127.0.0.1:${port}?profile=simple&buffer=500`),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await test.request("/api/channels/rist-simple/start", { method: "POST" })).status).toBe(200);
    await inside(primed(input, got.primed));
    const ts = ristStreamWithCues(73);
    await Effect.runPromise(sendPaced(chunkTs(ts), input, 0.25));
    await eventually("the stream at the receiver", () =>
      got.bytes().length >= ts.length ? true : undefined,
    );
    expectSame(got.bytes(), ts);
  });

  it("hot add and remove: one output with two peers (weight 0: a copy each) and one calling a dead peer, which stalls neither it nor the UDP output", async () => {
    const { test, inside } = await startApp();
    const input = await freeUdpPort();
    const [portA, portB, dead] = [await freeUdpPort(), await freeUdpPort(), await freeUdpPort()];
    const [a, b, udp] = [collector(), collector(), collector()];
    const sinkA = await inside(peers.udpReceiver(a.onDatagram));
    const sinkB = await inside(peers.udpReceiver(b.onDatagram));
    const sinkUdp = await inside(peers.udpReceiver(udp.onDatagram));
    await inside(ristReceiverPeer({ mode: "listen", port: portA, udpPort: sinkA }));
    await inside(ristReceiverPeer({ mode: "listen", port: portB, udpPort: sinkB }));
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "rist-hot",
        name: "RIST hot",
        rtp_ip: "127.0.0.1",
        rtp_port: input,
        outputs: [{ id: "udp", name: "udp", protocol: "udp", url: `udp://127.0.0.1:${sinkUdp}` }],
      }),
    });
    expect(created.status).toBe(201);
    expect((await test.request("/api/channels/rist-hot/start", { method: "POST" })).status).toBe(200);
    for (const [id, url] of [
      ["pair", `rist://127.0.0.1:${portA}?weight=0,rist://127.0.0.1:${portB}?weight=0`],
      ["dead", `rist://127.0.0.1:${dead}?secret=nobody-listens-0123`],
    ] as const) {
      const added = await test.request("/api/channels/rist-hot/outputs", {
        method: "POST",
        body: JSON.stringify({ id, name: id, protocol: "rist", url }),
      });
      expect(added.status, await added.clone().text()).toBe(201);
    }
    await inside(primed(input, () => a.primed() && b.primed() && udp.primed()));
    const ts = ristStreamWithCues(74);
    await Effect.runPromise(sendPaced(chunkTs(ts), input, 0.25));
    await eventually("the stream at every live receiver", () =>
      [a, b, udp].every((got) => got.bytes().length >= ts.length) ? true : undefined,
    );
    for (const got of [a, b, udp]) expectSame(got.bytes(), ts);
    const outputs = (await json(await test.request("/api/channels/rist-hot"))).outputs as Array<{
      id: string;
      state: string;
    }>;
    expect(outputs.find((output) => output.id === "pair")?.state).toBe("connected");
    expect(outputs.find((output) => output.id === "dead")?.state).not.toBe("connected");

    const removed = await test.request("/api/channels/rist-hot/outputs/pair", { method: "DELETE" });
    expect(removed.status).toBeLessThan(300);
    const before = udp.bytes().length;
    const again = ristStreamWithCues(75);
    await Effect.runPromise(sendPaced(chunkTs(again), input, 0.25));
    await eventually("the UDP output goes on", () =>
      udp.bytes().length >= before + again.length ? true : undefined,
    );
    expect(udp.bytes().subarray(before).equals(Buffer.from(again))).toBe(true);
  });

  it("a wrong secret and a profile mismatch: no data, and the input's status says so in words within 5 s; the right sender's link figures in the API and /metrics", async () => {
    const { test, inside } = await startApp();
    const port = await Effect.runPromise(freeEvenPort);
    const got = collector();
    const sink = await inside(peers.udpReceiver(got.onDatagram));
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "rist-words",
        name: "RIST words",
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        input_url: `rist://@127.0.0.1:${port}?secret=${secret}`,
        outputs: [{ name: "sink", protocol: "udp", url: `udp://127.0.0.1:${sink}` }],
      }),
    });
    expect(created.status).toBe(201);
    expect((await test.request("/api/channels/rist-words/start", { method: "POST" })).status).toBe(200);
    const rist = () => ristLink(test, "rist-words");
    const words = "no RIST data from the peer: check the profile, the secret and the port";
    for (const wrong of [
      { secret: "not-the-right-secret-0", profile: "main" as const },
      { profile: "simple" as const },
    ]) {
      await refusedSender(test, "rist-words", { port, ...wrong }, words);
      expect(got.bytes().length).toBe(0);
    }

    const sender = await inside(ristSenderPeer({ mode: "connect", port, secret }));
    await inside(primed(sender.udpPort, got.primed));
    const ts = ristStreamWithCues(77);
    await Effect.runPromise(sendPaced(chunkTs(ts), sender.udpPort, 0.25));
    await eventually("the stream at the output", () => (got.bytes().length >= ts.length ? true : undefined));
    expectSame(got.bytes(), ts);
    const link = await eventually("the link's figures", async () => {
      const figures = await rist();
      return figures !== null && figures.problem === null && Number(figures.received) >= 380
        ? figures
        : undefined;
    });
    expect(link).toMatchObject({ peer: `127.0.0.1:${port}`, lost: 0, authenticated: true, quality: 100 });
    const metrics = await (await test.request("/metrics")).text();
    expect(metrics).toMatch(
      /distributary_rist_received_packets_total\{channel="rist-words",direction="input",link="primary",peer="1"\} \d{3}/,
    );
    expect(metrics).toContain(
      `distributary_rist_authenticated{channel="rist-words",direction="input",link="primary",peer="1"} 1`,
    );
    expect(metrics).not.toContain(secret);
    const cookie = await loginSession(test, ADMIN_TOKEN, "/channels/rist-words");
    const page = await (
      await test.request("http://127.0.0.1/channels/rist-words", { token: null, headers: { cookie } })
    ).text();
    expect(page).toContain("RIST links");
    expect(page).not.toContain("no RIST data from the peer");
    expect(page).not.toContain(secret);
  });

  it("an input: a bad srpfile refused in words; a wrong password and an unknown user get no data and words within 5 s; the right one byte for byte", async () => {
    const { test, inside, srpDir: dir } = await startApp();
    const file = await inside(srpFile("encoder-7", PASSWORD, dir));
    const port = await freeUdpPort();
    const channel = (input_url: string) =>
      test.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({ name: "bad", rtp_ip: "127.0.0.1", rtp_port: port, input_url }),
      });
    for (const [url, words] of [
      [`rist://127.0.0.1:${port}?srpfile=${file}`, "it goes on a listening peer (rist://@…)"],
      [`rist://@127.0.0.1:${port}?srpfile=users.srp`, "srpfile must be the absolute path"],
      [`rist://@127.0.0.1:${port}?srpfile=${file}&username=a&password=b`, "not both"],
      [`rist://@127.0.0.1:${port}?profile=simple&srpfile=${file}`, "the simple profile has no encryption"],
    ] as const) {
      const refused = await channel(url);
      expect(refused.status).toBe(400);
      expect(JSON.stringify(await json(refused))).toContain(words);
    }
    // A file that cannot be read when the input starts: the input runs, turns every caller away and says so in
    // the one wording that never tells whether a file exists, naming the path and the setting, not its content.
    const missing = await channel(`rist://@127.0.0.1:${port}?srpfile=${file}.missing`);
    const missingId = String((await json(missing)).id);
    expect((await test.request(`/api/channels/${missingId}/start`, { method: "POST" })).status).toBe(200);
    const unread = await eventually("the input's words", async () => {
      const problem = (await ristLink(test, missingId))?.problem;
      return typeof problem === "string" && problem.includes("srpfile=") ? problem : undefined;
    });
    expect(unread).toBe(
      `EAP-SRP: every caller is turned away: srpfile=${file}.missing is not an allowed srpfile: name a regular file of ristsrppasswd lines, at most 1 MiB, in ${dir} (DISTRIBUTARY_RIST_SRP_DIR) or below`,
    );
    expect((await test.request(`/api/channels/${missingId}`, { method: "DELETE" })).status).toBe(200);

    const got = collector();
    const sink = await inside(peers.udpReceiver(got.onDatagram));
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "rist-srp",
        name: "RIST SRP",
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        input_url: `rist://@127.0.0.1:${port}?srpfile=${file}`,
        outputs: [{ name: "sink", protocol: "udp", url: `udp://127.0.0.1:${sink}` }],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    // The path is no secret: shown as written.
    expect((await json(created)).input_url).toBe(`rist://@127.0.0.1:${port}?srpfile=${file}`);
    expect((await test.request("/api/channels/rist-srp/start", { method: "POST" })).status).toBe(200);
    const rist = () => ristLink(test, "rist-srp");
    for (const [username, password, words] of [
      [
        "encoder-7",
        "not-the-password-1",
        "EAP-SRP: the caller 'encoder-7' was refused: its password does not match the srpfile's verifier",
      ],
      [
        "intruder",
        PASSWORD,
        "EAP-SRP: the caller 'intruder' is not in the input's srpfile: add it with ristsrppasswd",
      ],
    ] as const) {
      await refusedSender(test, "rist-srp", { port, username, password }, words);
      expect(got.bytes().length).toBe(0);
    }

    const sender = await inside(
      ristSenderPeer({ mode: "connect", port, username: "encoder-7", password: PASSWORD }),
    );
    await inside(primed(sender.udpPort, got.primed));
    const ts = ristStreamWithCues(79);
    await Effect.runPromise(sendPaced(chunkTs(ts), sender.udpPort, 0.25));
    await eventually("the stream at the output", () => (got.bytes().length >= ts.length ? true : undefined));
    expectSame(got.bytes(), ts);
    const link = await eventually("the link authenticated", async () => {
      const figures = await rist();
      return figures?.authenticated === true && figures.problem === null ? figures : undefined;
    });
    expect(link).toMatchObject({ lost: 0, quality: 100 });
    const metrics = await (await test.request("/metrics")).text();
    expect(metrics).toContain(
      `distributary_rist_authenticated{channel="rist-srp",direction="input",link="primary",peer="1"} 1`,
    );
    expect(metrics).not.toContain(PASSWORD);
  });

  it("a listening output serves the receiver that authenticates by EAP-SRP, and nothing to one with a wrong password", async () => {
    const { test, inside, srpDir: dir } = await startApp();
    const file = await inside(srpFile("player-1", PASSWORD, dir));
    const [input, listenOn] = [await freeUdpPort(), await freeUdpPort()];
    const [right, wrong] = [collector(), collector()];
    const [sinkRight, sinkWrong] = [
      await inside(peers.udpReceiver(right.onDatagram)),
      await inside(peers.udpReceiver(wrong.onDatagram)),
    ];
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "rist-srp-out",
        name: "RIST SRP out",
        rtp_ip: "127.0.0.1",
        rtp_port: input,
        outputs: [
          { id: "srp", name: "srp", protocol: "rist", url: `rist://@127.0.0.1:${listenOn}?srpfile=${file}` },
        ],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await test.request("/api/channels/rist-srp-out/start", { method: "POST" })).status).toBe(200);
    const receiver = { mode: "connect", port: listenOn, username: "player-1" } as const;
    await inside(ristReceiverPeer({ ...receiver, password: "not-the-password-2", udpPort: sinkWrong }));
    await inside(ristReceiverPeer({ ...receiver, password: PASSWORD, udpPort: sinkRight }));
    await inside(primed(input, right.primed));
    const ts = ristStreamWithCues(80);
    await Effect.runPromise(sendPaced(chunkTs(ts), input, 0.25));
    await eventually("the stream at the receiver", () =>
      right.bytes().length >= ts.length ? true : undefined,
    );
    expectSame(right.bytes(), ts);
    expect(wrong.bytes().length).toBe(0);
  });
});
