import { Either } from "effect";
import { decodeCueText } from "../core/scte35/index.ts";

/** `distributary scte35 <base64 | hex>`: the decoded section as JSON, or exit 1 with a one-line reason. */
export const scte35Command = (args: ReadonlyArray<string>): void => {
  const text = args.join("").trim();
  if (text === "") {
    process.stderr.write("distributary scte35: give one splice_info_section as base64 or hex\n");
    process.exitCode = 1;
    return;
  }
  const decoded = decodeCueText(text);
  if (Either.isLeft(decoded)) {
    process.stderr.write(`distributary scte35: ${decoded.left.message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${JSON.stringify(decoded.right, null, 2)}\n`);
};
