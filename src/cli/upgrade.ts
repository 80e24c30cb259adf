/**
 * `distributary upgrade`: asks the service running on this config directory to start the code installed now
 * beside itself and hand it everything (src/effects/handover/upgrade.ts), through its control socket. Prints
 * how it goes; exits 0 once the new process serves, 1 with the reason when the old one keeps its channels.
 */
import { connect } from "node:net";
import { parseArgs } from "node:util";
import { configDir as configDirSetting, settingNow } from "../effects/config/settings.ts";
import { controlSocketPath } from "../effects/handover/peer.ts";

export const upgradeCommand = (args: ReadonlyArray<string>): Promise<void> =>
  new Promise((done) => {
    const { values } = parseArgs({ args: [...args], options: { "config-dir": { type: "string" } } });
    const configDir = values["config-dir"] ?? settingNow(configDirSetting, "./config");
    const path = controlSocketPath(configDir);
    const socket = connect(path);
    let text = "";
    let outcome: "ok" | "failed" | null = null;
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write("upgrade\n"));
    socket.on("data", (chunk: string) => {
      text += chunk;
      for (let end = text.indexOf("\n"); end >= 0; end = text.indexOf("\n")) {
        const line = text.slice(0, end);
        text = text.slice(end + 1);
        if (line.startsWith("ok:")) outcome = "ok";
        else if (line.startsWith("failed:")) outcome = "failed";
        (outcome === "failed" ? process.stderr : process.stdout).write(`distributary: ${line}\n`);
      }
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      const why =
        error.code === "ENOENT" || error.code === "ECONNREFUSED"
          ? `no service runs on ${configDir} (nothing answers at ${path}); start one with 'distributary serve'`
          : error.code === "EACCES"
            ? `${path} belongs to another user: run this as the service's user (or root)`
            : `cannot reach the service at ${path}: ${error.message}`;
      process.stderr.write(`distributary: ${why}\n`);
      process.exitCode = 1;
      done();
    });
    socket.on("close", () => {
      if (outcome === null && process.exitCode !== 1) {
        process.stderr.write("distributary: the service closed the control socket without an answer\n");
        process.exitCode = 1;
      } else if (outcome === "failed") process.exitCode = 1;
      done();
    });
  });
