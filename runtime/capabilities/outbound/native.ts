/**
 * Outbound HTTP for native components: their process has no network at all,
 * so their `fetch` comes to the server process, which sends it under the
 * component's `net` grants (`follow.ts`), at most `limits.outbound` at once,
 * and answers with the whole response (up to {@link MAX_RESPONSE_BYTES}).
 *
 * @module
 */
import { concatBytes } from "../../bytes.ts";
import { log } from "../../log.ts";
import { componentMetrics, GuestCounts } from "../../metrics.ts";
import type { Permissions } from "../../permissions.ts";
import type { OutboundAnswer } from "../../isolation/native_protocol.ts";
import type { OutboundRequest } from "../../isolation/native_host.ts";
import { fetchGranted, OutboundRefused } from "./follow.ts";

/** The largest response body a native component's outbound request gets. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Headers that the connection sets itself. */
const HOP_HEADERS = new Set(["host", "connection", "content-length", "transfer-encoding"]);

/** The outbound sender of native component `name`; rejects with the reason a request failed. */
export function outboundFor(
  name: string,
  permissions: Permissions,
): (request: OutboundRequest) => Promise<OutboundAnswer> {
  const counts = new GuestCounts(componentMetrics(name).guestShared);
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  return async (request) => {
    const url = new URL(request.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(`scheme ${url.protocol} not supported`);
    }
    while (inFlight >= permissions.limits.outbound) {
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
    inFlight++;
    try {
      const response = await fetchGranted(url, {
        method: request.method,
        headers: request.headers.filter(([name]) => !HOP_HEADERS.has(name.toLowerCase())),
        body: request.body ? ReadableStream.from([request.body]) : undefined,
      }, permissions.net);
      const chunks: Uint8Array[] = [];
      let size = 0;
      for await (const chunk of response.body ?? []) {
        size += chunk.byteLength;
        if (size > MAX_RESPONSE_BYTES) {
          await response.body?.cancel();
          throw new Error(`response body larger than ${MAX_RESPONSE_BYTES} bytes`);
        }
        chunks.push(chunk);
      }
      counts.count("fetch");
      return {
        status: response.status,
        headers: [...response.headers],
        body: concatBytes(chunks) as Uint8Array<ArrayBuffer>,
      };
    } catch (error) {
      if (error instanceof OutboundRefused) {
        counts.count("fetch", true);
        log.warn(`${name}: outbound request denied: ${error.message}`);
        throw new Error(`HTTP-request-denied: ${error.message}`);
      }
      throw error;
    } finally {
      inFlight--;
      waiting.shift()?.();
    }
  };
}
