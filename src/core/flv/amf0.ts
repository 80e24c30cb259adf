/**
 * AMF0 (Adobe's Action Message Format, version 0), as RTMP commands and FLV script data carry it: numbers are
 * big-endian IEEE 754 doubles, strings UTF-8 behind a 16-bit length (32-bit for a long string), objects and
 * ECMA arrays a list of key/value pairs closed by an empty key and the object-end marker.
 *
 *   encodeAmf0("onMetaData", new EcmaArray({ width: 1280 }))   // the body of a script data tag
 *   decodeAmf0(reply)                                           // Either of every value, in order
 *
 * A JS string of more than 65535 UTF-8 bytes is written as a long string; a JS array is a strict array; a
 * plain object is an anonymous object; an `EcmaArray` is an ECMA array (what onMetaData traditionally is).
 */
import * as Data from "effect/Data";
import * as Either from "effect/Either";

export const AMF0 = {
  number: 0x00,
  boolean: 0x01,
  string: 0x02,
  object: 0x03,
  null: 0x05,
  undefined: 0x06,
  ecmaArray: 0x08,
  objectEnd: 0x09,
  strictArray: 0x0a,
  date: 0x0b,
  longString: 0x0c,
} as const;

/** An associative array written with the ECMA array marker and its (advisory) count. */
export class EcmaArray {
  readonly entries: Readonly<Record<string, Amf0Value>>;
  constructor(entries: Readonly<Record<string, Amf0Value>>) {
    this.entries = entries;
  }
}

/** A date as AMF0 carries it: milliseconds since the epoch and a time zone the specification says to ignore. */
export class Amf0Date {
  readonly epochMs: number;
  constructor(epochMs: number) {
    this.epochMs = epochMs;
  }
}

export type Amf0Value =
  | number
  | boolean
  | string
  | null
  | undefined
  | EcmaArray
  | Amf0Date
  | ReadonlyArray<Amf0Value>
  | { readonly [key: string]: Amf0Value };

class Amf0Error extends Data.TaggedError("Amf0Error")<{ readonly message: string }> {}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const SHORT_STRING_MAX = 0xffff;

/** UTF-8 length without encoding: a lone surrogate counts 3, as TextEncoder writes it as U+FFFD. */
const utf8Length = (text: string): number => {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) length += 1;
    else if (unit < 0x800) length += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        length += 4;
        i++;
      } else length += 3;
    } else length += 3;
  }
  return length;
};

/** Bytes needed for `value`, so that encoding fills one buffer of the exact size. */
const sizeOf = (value: Amf0Value): number => {
  if (typeof value === "number") return 9;
  if (typeof value === "boolean") return 2;
  if (typeof value === "string") {
    const length = utf8Length(value);
    return length > SHORT_STRING_MAX ? 5 + length : 3 + length;
  }
  if (value === null || value === undefined) return 1;
  if (value instanceof Amf0Date) return 11;
  if (Array.isArray(value)) {
    let size = 5;
    for (const item of value as ReadonlyArray<Amf0Value>) size += sizeOf(item);
    return size;
  }
  const entries = value instanceof EcmaArray ? value.entries : (value as Record<string, Amf0Value>);
  let size = value instanceof EcmaArray ? 5 + 3 : 1 + 3;
  for (const key in entries) size += keySize(key) + sizeOf(entries[key]);
  return size;
};

const keySize = (key: string): number => {
  const length = utf8Length(key);
  if (length > SHORT_STRING_MAX) throw new RangeError(`AMF0 property name of ${length} bytes: at most 65535`);
  return 2 + length;
};

class Writer {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos: number;
  constructor(bytes: Uint8Array, pos: number) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
  }
  u8(value: number): void {
    this.bytes[this.pos++] = value;
  }
  u16(value: number): void {
    this.view.setUint16(this.pos, value);
    this.pos += 2;
  }
  u32(value: number): void {
    this.view.setUint32(this.pos, value);
    this.pos += 4;
  }
  utf8(text: string): number {
    const { written } = utf8.encodeInto(text, this.bytes.subarray(this.pos));
    this.pos += written;
    return written;
  }
  /** A 16- or 32-bit length, then the text; the length is patched once the text is written. */
  sized(text: string, wide: boolean): void {
    const at = this.pos;
    this.pos += wide ? 4 : 2;
    const written = this.utf8(text);
    if (wide) this.view.setUint32(at, written);
    else this.view.setUint16(at, written);
  }
}

const writeValue = (w: Writer, value: Amf0Value): void => {
  if (typeof value === "number") {
    w.u8(AMF0.number);
    w.view.setFloat64(w.pos, value);
    w.pos += 8;
  } else if (typeof value === "boolean") {
    w.u8(AMF0.boolean);
    w.u8(value ? 1 : 0);
  } else if (typeof value === "string") {
    const wide = utf8Length(value) > SHORT_STRING_MAX;
    w.u8(wide ? AMF0.longString : AMF0.string);
    w.sized(value, wide);
  } else if (value === null) {
    w.u8(AMF0.null);
  } else if (value === undefined) {
    w.u8(AMF0.undefined);
  } else if (value instanceof Amf0Date) {
    w.u8(AMF0.date);
    w.view.setFloat64(w.pos, value.epochMs);
    w.pos += 8;
    w.u16(0);
  } else if (Array.isArray(value)) {
    w.u8(AMF0.strictArray);
    w.u32(value.length);
    for (const item of value as ReadonlyArray<Amf0Value>) writeValue(w, item);
  } else {
    const ecma = value instanceof EcmaArray;
    const entries = ecma ? value.entries : (value as Record<string, Amf0Value>);
    w.u8(ecma ? AMF0.ecmaArray : AMF0.object);
    if (ecma) w.u32(Object.keys(entries).length);
    for (const key in entries) {
      w.sized(key, false);
      writeValue(w, entries[key]);
    }
    w.u16(0);
    w.u8(AMF0.objectEnd);
  }
};

/** The values one after another, as an RTMP command message or a script data tag's body holds them. */
export const encodeAmf0 = (...values: ReadonlyArray<Amf0Value>): Uint8Array => {
  let size = 0;
  for (const value of values) size += sizeOf(value);
  const w = new Writer(new Uint8Array(size), 0);
  for (const value of values) writeValue(w, value);
  return w.bytes;
};

/** Ends the decoding of a value with a reason and the offset where it was found. */
class Stop {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

class Reader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos = 0;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number, what: string): number {
    if (this.pos + n > this.bytes.length) {
      throw new Stop(
        `${what} at offset ${this.pos} needs ${n} bytes, ${this.bytes.length - this.pos} remain`,
      );
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u8(what: string): number {
    return this.bytes[this.need(1, what)] ?? 0;
  }
  u16(what: string): number {
    return this.view.getUint16(this.need(2, what));
  }
  u32(what: string): number {
    return this.view.getUint32(this.need(4, what));
  }
  f64(what: string): number {
    return this.view.getFloat64(this.need(8, what));
  }
  text(length: number, what: string): string {
    const at = this.need(length, what);
    try {
      return utf8Decoder.decode(this.bytes.subarray(at, at + length));
    } catch {
      throw new Stop(`${what} at offset ${at} is not UTF-8`);
    }
  }
}

const readProperties = (r: Reader, into: Record<string, Amf0Value>, depth: number): void => {
  for (;;) {
    const key = r.text(r.u16("property name length"), "property name");
    if (key === "") {
      const marker = r.u8("object end");
      if (marker !== AMF0.objectEnd) {
        throw new Stop(
          `an empty property name is followed by marker 0x${marker.toString(16)}, not object end`,
        );
      }
      return;
    }
    into[key] = readValue(r, depth + 1);
  }
};

const MAX_DEPTH = 64;

const readValue = (r: Reader, depth: number): Amf0Value => {
  if (depth > MAX_DEPTH) throw new Stop(`values nested more than ${MAX_DEPTH} deep`);
  const at = r.pos;
  const marker = r.u8("type marker");
  switch (marker) {
    case AMF0.number:
      return r.f64("number");
    case AMF0.boolean:
      return r.u8("boolean") !== 0;
    case AMF0.string:
      return r.text(r.u16("string length"), "string");
    case AMF0.longString:
      return r.text(r.u32("long string length"), "long string");
    case AMF0.null:
      return null;
    case AMF0.undefined:
      return undefined;
    case AMF0.date: {
      const epochMs = r.f64("date");
      r.u16("date time zone");
      return new Amf0Date(epochMs);
    }
    case AMF0.object: {
      const object: Record<string, Amf0Value> = {};
      readProperties(r, object, depth);
      return object;
    }
    case AMF0.ecmaArray: {
      r.u32("ECMA array count");
      const entries: Record<string, Amf0Value> = {};
      readProperties(r, entries, depth);
      return new EcmaArray(entries);
    }
    case AMF0.strictArray: {
      const count = r.u32("strict array count");
      // Each item takes at least a byte, so a count beyond what remains is a lie, not a reason to allocate.
      if (count > r.bytes.length - r.pos) {
        throw new Stop(
          `strict array at offset ${at} counts ${count} items, ${r.bytes.length - r.pos} bytes remain`,
        );
      }
      const items: Amf0Value[] = [];
      for (let i = 0; i < count; i++) items.push(readValue(r, depth + 1));
      return items;
    }
    default:
      throw new Stop(
        `type marker 0x${marker.toString(16).padStart(2, "0")} at offset ${at} is not one this decoder reads`,
      );
  }
};

/** Every value in `bytes`, in order; an error says what was malformed and at which offset. */
export const decodeAmf0 = (bytes: Uint8Array): Either.Either<ReadonlyArray<Amf0Value>, Amf0Error> => {
  const r = new Reader(bytes);
  const values: Amf0Value[] = [];
  try {
    while (r.pos < bytes.length) values.push(readValue(r, 0));
  } catch (error) {
    if (error instanceof Stop) return Either.left(new Amf0Error({ message: error.message }));
    throw error;
  }
  return Either.right(values);
};
