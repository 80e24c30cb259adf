/** A recording as an answer: streamed from disk (it may still be growing), saved under its own name. */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";

export const recordingResponse = (path: string, name: string): Response =>
  new Response(Readable.toWeb(createReadStream(path)) as ReadableStream, {
    headers: {
      "content-type": "video/mp2t",
      "content-disposition": `attachment; filename="${name}"`,
      "cache-control": "no-store",
    },
  });
