import { parseArgs } from "node:util";
import { NodeRuntime } from "@effect/platform-node";
import { Effect } from "effect";
import { makeApp } from "../http/app.ts";
import { listen } from "../http/server.ts";
import { version } from "../version.ts";

const usage = `distributary ${version} — live MPEG-TS distribution

usage:
  distributary serve [--port N]                     start the service (default port 8000, or DISTRIBUTARY_PORT)
  distributary probe <file.ts | udp://@:PORT | rtp://@:PORT> [--seconds N] [--json]
                                                    analyse a TS: programs, PIDs, errors, SCTE-35 cues
  distributary scte35 <base64 | hex>                decode one SCTE-35 splice_info_section to JSON
  distributary --version
`;

const fail = (message: string): never => {
  process.stderr.write(`distributary: ${message}\n`);
  process.exit(1);
};

const serveCommand = (args: ReadonlyArray<string>) => {
  const { values } = parseArgs({ args: [...args], options: { port: { type: "string" } } });
  const port = Number(values.port ?? process.env.DISTRIBUTARY_PORT ?? 8000);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`--port must be 1–65535, got ${values.port}`);
  const program = Effect.gen(function* () {
    yield* listen(makeApp(), { port });
    yield* Effect.logInfo(`distributary ${version} listening on http://localhost:${port}`);
    return yield* Effect.never;
  });
  NodeRuntime.runMain(Effect.scoped(program));
};

const main = async (argv: ReadonlyArray<string>) => {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return serveCommand(rest);
    case "probe": {
      const { probeCommand } = await import("./probe.ts");
      return probeCommand(rest);
    }
    case "scte35": {
      const { scte35Command } = await import("./scte35.ts");
      return scte35Command(rest);
    }
    case "--version":
    case "version":
      process.stdout.write(`${version}\n`);
      return;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(usage);
      return;
    default:
      fail(`unknown command '${command}'; see 'distributary --help'`);
  }
};

await main(process.argv.slice(2));
