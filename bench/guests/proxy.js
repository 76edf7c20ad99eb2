// The bench handler built for the plain `wasi:http/proxy@0.2.12` world, the
// world `jco serve` can run.
import { handle } from "./handler.js";

export const incomingHandler = { handle: (request, out) => handle(request, out) };
