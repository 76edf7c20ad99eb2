/**
 * Outbound HTTP: the Web-standard `fetch`, over `wasi:http/outgoing-handler`.
 * The component's permission manifest lists the hosts it may call under
 * `"net"`; a call to any other host fails with a `TypeError` whose message
 * names the host's reason (`HTTP-request-denied`).
 *
 * ```ts
 * import { fetch } from "@pier/guest/fetch";
 *
 * const response = await fetch("https://api.example.com/items?limit=5");
 * if (!response.ok) throw new Error(`upstream answered ${response.status}`);
 * const items = await response.json();
 * ```
 *
 * Redirects are the host's business: Pier follows them, checking every hop
 * against the grants (`wasi:http` itself does not follow them).
 *
 * @module
 */
import { backend } from "./backend.ts";

/**
 * Web-standard `fetch` through the host. Request bodies are sent whole;
 * response bodies stream.
 */
export function fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  return backend.fetch(new Request(input, init));
}
