/**
 * The test RTMP receiver (rtmp-peers.ts testReceiver) as a process of its own, for a lab namespace:
 *
 *   node rtmp-sink-agent.ts <address> <port>
 *
 * Listens on address:port (IPv6 or IPv4), writes "ready" on stderr, then one JSON line on stdout per message
 * it gets: its type, timestamp and body size, the body's first bytes (an FLV tag's frame and packet type) and,
 * for a data message, its AMF0 values.
 */
import { Effect, Scope } from "effect";
import { MESSAGE } from "../../src/core/rtmp/chunks.ts";
import { testReceiver } from "./rtmp-peers.ts";

const [host = "127.0.0.1", portText = "1935"] = process.argv.slice(2);
process.on("SIGTERM", () => process.exit(0));
const scope = Effect.runSync(Scope.make());
const receiver = await Effect.runPromise(Scope.extend(testReceiver(Number(portText), { host }), scope));
process.stderr.write("ready\n");
let told = 0;
setInterval(() => {
  const lines: string[] = [];
  for (; told < receiver.messages.length; told++) {
    const message = receiver.messages[told];
    if (message === undefined) continue;
    lines.push(
      JSON.stringify({
        type: message.type,
        timestamp: message.timestamp,
        size: message.body.length,
        head: Buffer.from(message.body.subarray(0, 2)).toString("hex"),
        values: message.type === MESSAGE.data ? message.values : null,
      }),
    );
  }
  if (lines.length > 0) process.stdout.write(`${lines.join("\n")}\n`);
}, 20);
