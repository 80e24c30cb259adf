import { JSONSchema } from "effect";
import { ChannelBody } from "../src/domain/channel.ts";
const j = JSON.stringify(JSONSchema.make(ChannelBody));
console.log(j.length, j.includes("ScheduleWindow"), j.slice(j.indexOf("ScheduleWindow"), j.indexOf("ScheduleWindow") + 1500));
