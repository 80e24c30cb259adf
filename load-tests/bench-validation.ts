/**
 * What a hostile body costs the main thread to validate, and how large its answer is: an output policy listing
 * 100,000 invalid PIDs, a remap of 100,000 keys, and a channel whose 64 outputs each carry such a policy, each
 * decoded as the API decodes a body (src/domain/base/validate.ts). Prints, per body, the median and the longest of
 * the runs in milliseconds and the problem answer's size in bytes. No network; a few seconds.
 *
 *   node load-tests/bench-validation.ts [--runs 20]
 */
import { parseArgs } from "node:util";
import { Effect, Either } from "effect";
import { decodeBody } from "../src/domain/base/validate.ts";
import { ChannelBody } from "../src/domain/channel/channel.ts";
import { OutputPolicy } from "../src/domain/channel/output-policy-schema.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "20" } } });
const RUNS = Number(values.runs);

const wrongPids = Array.from({ length: 100_000 }, (_, i) => 70_000 + i);
const bodies: ReadonlyArray<readonly [string, typeof OutputPolicy | typeof ChannelBody, unknown]> = [
  ["policy, pids.drop of 100,000 wrong PIDs", OutputPolicy, { pids: { drop: wrongPids } }],
  [
    "policy, remap of 100,000 keys",
    OutputPolicy,
    { remap: Object.fromEntries(wrongPids.map((pid) => [String(pid), 1])) },
  ],
  [
    "channel, 64 outputs each with 1,500 wrong PIDs",
    ChannelBody,
    {
      name: "hostile",
      rtp_port: 5000,
      outputs: Array.from({ length: 64 }, (_, i) => ({
        name: `o${i}`,
        protocol: "udp",
        url: `udp://127.0.0.1:${6000 + i}`,
        policy: { pids: { drop: wrongPids.slice(0, 1500) } },
      })),
    },
  ],
];

for (const [name, schema, body] of bodies) {
  const times: number[] = [];
  let size = 0;
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    const result = Effect.runSync(Effect.either(decodeBody(schema as typeof OutputPolicy)(body)));
    times.push(performance.now() - started);
    if (Either.isLeft(result)) {
      const { message, errors } = result.left;
      size = JSON.stringify({ detail: message, errors }).length;
    }
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)] ?? 0;
  console.log(
    `${name}: median ${median.toFixed(2)} ms, longest ${(times.at(-1) ?? 0).toFixed(2)} ms, answer ${size} bytes`,
  );
}
