/**
 * `/api/channels/{id}/medialive`: the AWS MediaLive channel linked to one of ours — what it is doing, and
 * start, stop, and keeping it running against the cost guard. Each command is audited in the token's name
 * and its outcome is a `medialive_action` event; AWS's refusals come back in words (502), a state that does
 * not allow the action as a conflict (409).
 */
import { MediaLiveView } from "../../domain/medialive/medialive.ts";
import type { MediaLive } from "../../effects/medialive/medialive.ts";
import { type Api, inChannel, makeApi, type Run } from "../routes.ts";

export const medialiveApi = (medialive: MediaLive, run: Run): Api => {
  const { app, routes, on } = makeApi({ channels: true });

  on(
    {
      method: "get",
      path: "/{id}/medialive",
      access: "viewer",
      summary:
        "The linked MediaLive channel: state, pipelines, destinations checked against this channel's inputs, egress endpoints, the cost guard's pending stop",
      response: MediaLiveView,
    },
    (c) => run(c, inChannel(c, medialive.find), (view) => c.json(view)),
  );

  on(
    {
      method: "post",
      path: "/{id}/medialive/start",
      access: "operator",
      summary: "Start the linked MediaLive channel (it must be IDLE); it takes minutes to run",
      response: MediaLiveView,
    },
    (c) => run(c, inChannel(c, medialive.start), (view) => c.json(view)),
  );

  on(
    {
      method: "post",
      path: "/{id}/medialive/stop",
      access: "operator",
      summary: "Stop the linked MediaLive channel (it must be RUNNING); every output fed by it goes quiet",
      response: MediaLiveView,
    },
    (c) => run(c, inChannel(c, medialive.stop), (view) => c.json(view)),
  );

  on(
    {
      method: "post",
      path: "/{id}/medialive/keep",
      access: "operator",
      summary: "Call off the cost guard's pending stop until an output of this channel sends again",
      response: MediaLiveView,
    },
    (c) => run(c, inChannel(c, medialive.keep), (view) => c.json(view)),
  );

  return { app, routes };
};
