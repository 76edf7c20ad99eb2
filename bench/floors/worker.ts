/**
 * A floor's worker: requests `[id, url]` come as messages (a turn's in one)
 * or, once it was given two rings, over Pier's shared-memory ring
 * (`runtime/isolation/ring.ts`); each is answered by {@link answer}, a turn's
 * answers sent together.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { Ring } from "../../runtime/isolation/ring.ts";
import { answer } from "./frames.ts";

type Answers = [number, Uint8Array<ArrayBuffer>][];
let answers: Answers = [];
let send = (batch: Answers) => self.postMessage(batch);
const reply = (id: number, body: Uint8Array<ArrayBuffer>) => {
  if (answers.length === 0) {
    setImmediate(() => {
      send(answers);
      answers = [];
    });
  }
  answers.push([id, body]);
};

self.onmessage = (event: MessageEvent) => {
  if (Array.isArray(event.data)) {
    for (const [id, url] of event.data as [number, string][]) answer(url).then((b) => reply(id, b));
    return;
  }
  const requests = new Ring(event.data.requests);
  const responses = new Ring(event.data.responses);
  send = (batch) => {
    for (const [id, body] of batch) responses.write(id, body);
    responses.notify();
  };
  requests.listen(({ head, body }) => {
    const id = head as number;
    answer(new TextDecoder().decode(body)).then((b) => reply(id, b));
  });
};
