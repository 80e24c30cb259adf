import * as Either from "effect/Either";
import { decodeSection, parseCueText } from "../core/scte35/index.ts";

/**
 * A section copied out of a TS packet's payload starts with its pointer_field: that many bytes (usually none)
 * before table_id 0xFC. Such a payload is read from the section it points to; anything else as it is.
 */
const withoutPointerField = (bytes: Uint8Array): Uint8Array => {
  const pointer = bytes[0];
  if (pointer === undefined || pointer === 0xfc) return bytes;
  return bytes[pointer + 1] === 0xfc ? bytes.subarray(pointer + 1) : bytes;
};

/**
 * `distributary scte35 <base64 | hex>`: the decoded section as JSON, or exit 1 with a one-line reason. The
 * section may start with a pointer_field, as it does in a TS packet's payload.
 */
export const scte35Command = (args: ReadonlyArray<string>): void => {
  const text = args.join("").trim();
  if (text === "") {
    process.stderr.write("distributary scte35: give one splice_info_section as base64 or hex\n");
    process.exitCode = 1;
    return;
  }
  const decoded = Either.flatMap(parseCueText(text), (bytes) => decodeSection(withoutPointerField(bytes)));
  if (Either.isLeft(decoded)) {
    process.stderr.write(`distributary scte35: ${decoded.left.message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${JSON.stringify(decoded.right, null, 2)}\n`);
};
