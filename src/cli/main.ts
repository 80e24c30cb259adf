import { parseArgs } from "node:util";
import { defaultTeardown } from "@effect/platform/Runtime";
// The module itself, not the package index: the index loads every platform service (about 90 MB more RSS).
import { runMain } from "@effect/platform-node/NodeRuntime";
import * as Layer from "effect/Layer";
import {
  configDir as configDirSetting,
  serveHost,
  servePort,
  settingNow,
} from "../effects/config/settings.ts";
import { ServiceLive } from "../http/server.ts";
import { version } from "../version.ts";

const usage = `distributary ${version} — live MPEG-TS distribution

usage:
  distributary serve [--port N] [--host ADDR] [--config-dir DIR]
                                                    start the service (port 8000 or DISTRIBUTARY_PORT, host
                                                    0.0.0.0 or DISTRIBUTARY_HOST, ./config or
                                                    DISTRIBUTARY_CONFIG_DIR; DISTRIBUTARY_ADMIN_TOKEN sets
                                                    the admin token)
  distributary upgrade [--config-dir DIR]          start the code installed now beside the service running
                                                    on DIR and hand it every channel without a lost packet
                                                    (as SIGUSR2 does); exits 1 with the reason if the running
                                                    one keeps them
  distributary plan -f FILE [--prune] [--server URL] [--token T]
                                                    what applying the document (YAML or JSON) would change
                                                    and what each change costs on air; exits 0 with no
                                                    changes, 2 with changes, 1 on an error
  distributary apply -f FILE [--prune] [--auto-approve] [--server URL] [--token T]
                                                    plan, confirm, then apply that plan (server and token
                                                    also from DISTRIBUTARY_SERVER, DISTRIBUTARY_TOKEN)
  distributary export [--format yaml|json] [--server URL] [--token T]
                                                    the configuration as a declarative document
  distributary probe <file.ts | udp://@:PORT | rtp://@:PORT> [--seconds N] [--json]
                                                    analyse a TS: programs, PIDs, errors, SCTE-35 cues
  distributary scte35 <base64 | hex>                decode one SCTE-35 splice_info_section to JSON
  distributary migrate --to postgres://… [--config-dir DIR] [--replace]
                                                    bring a fleet's PostgreSQL schema up to date and import
                                                    a one-box config directory (channels and tokens) into it
  distributary --version
`;

const fail = (message: string): never => {
  process.stderr.write(`distributary: ${message}\n`);
  process.exit(1);
};

const serveCommand = (args: ReadonlyArray<string>) => {
  const { values } = parseArgs({
    args: [...args],
    options: { port: { type: "string" }, host: { type: "string" }, "config-dir": { type: "string" } },
  });
  // A flag wins over its setting; the settings have their defaults (src/effects/config/settings.ts).
  const portText = values.port ?? settingNow(servePort, "8000");
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`--port must be 1–65535, got ${portText}`);
  // `::` listens on every IPv6 and IPv4 address (dual stack); an IPv6 address may be given in brackets.
  const hostname = (values.host ?? settingNow(serveHost, "0.0.0.0")).replace(/^\[(.*)\]$/, "$1");
  const configDir = values["config-dir"] ?? settingNow(configDirSetting, "./config");
  // execa's child cleanup (signal-exit) re-raises SIGTERM/SIGINT as soon as its own handler is the only one
  // left, which is the case once runMain starts shutting down; the process would die mid-shutdown, before
  // its channels are stopped. With this listener present, runMain's orderly shutdown decides the exit.
  const leaveShutdownToRunMain = () => {};
  process.on("SIGTERM", leaveShutdownToRunMain);
  process.on("SIGINT", leaveShutdownToRunMain);
  runMain(Layer.launch(ServiceLive({ port, hostname, configDir })), {
    disablePrettyLogger: true,
    // A failure that set its own exit code (3: another process runs as this fleet node) keeps it.
    teardown: (exit, onExit) =>
      defaultTeardown(exit, (code) =>
        onExit(
          code !== 0 && typeof process.exitCode === "number" && process.exitCode !== 0
            ? process.exitCode
            : code,
        ),
      ),
  });
};

const main = async (argv: ReadonlyArray<string>) => {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return serveCommand(rest);
    case "upgrade": {
      const { upgradeCommand } = await import("./upgrade.ts");
      return upgradeCommand(rest);
    }
    case "plan":
    case "apply":
    case "export": {
      const commands = await import("./config-code.ts");
      const run =
        command === "plan"
          ? commands.planCommand
          : command === "apply"
            ? commands.applyCommand
            : commands.exportCommand;
      process.exitCode = await run(rest);
      return;
    }
    case "probe": {
      const { probeCommand } = await import("./probe.ts");
      return probeCommand(rest);
    }
    case "migrate": {
      const { migrateCommand } = await import("./migrate.ts");
      return migrateCommand(rest);
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
