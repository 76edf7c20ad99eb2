/**
 * An outbound request under a component's `net` grants, redirects followed
 * by hand so that every hop is checked: a host not granted, or a private
 * address not listed exactly, is refused before a byte is sent to it. Both
 * engines send through here: WebAssembly guests from their worker
 * (`worker.ts`), native components from the server process (`native.ts`).
 *
 * @module
 */
import { allowsHost, isPrivateAddress, type NetRule } from "../../permissions.ts";
import {
  AddressRefused,
  checkedFetch,
  type CheckedRequest,
  defaultPort,
  type Fetched,
} from "./checked_fetch.ts";

const MAX_REDIRECTS = 10;

/** A request refused by the grants (`denied`) or a loop of redirects (`loop`). */
export class OutboundRefused extends Error {
  constructor(readonly kind: "denied" | "loop", message: string) {
    super(message);
  }
}

/**
 * Sends `request` to `url` and follows its redirects; rejects with
 * {@link OutboundRefused} when a hop is not granted, else with the network's
 * error.
 */
export async function fetchGranted(
  url: URL,
  request: CheckedRequest,
  rules: NetRule[],
): Promise<Fetched> {
  // A private address is reached only when granted exactly, or through a private name (such as
  // `localhost`) that is: a public name that resolves to one is refused (DNS rebinding).
  const reachable = (url: URL) => (address: string) =>
    !isPrivateAddress(address) || isPrivateAddress(url.hostname) ||
    allowsHost(rules, address, defaultPort(url));
  if (!allowsHost(rules, url.hostname, defaultPort(url))) {
    throw new OutboundRefused("denied", `${url.host} is not in the manifest's "net"`);
  }
  try {
    let response = await checkedFetch(url, request, reachable(url));
    for (let hops = 0; response.status >= 300 && response.status < 400; hops++) {
      const location = response.headers.get("location");
      if (!location) break;
      await response.body?.cancel();
      if (hops === MAX_REDIRECTS) throw new OutboundRefused("loop", "too many redirects");
      const next = new URL(location, url);
      if (isPrivateAddress(next.hostname) || !allowsHost(rules, next.hostname, defaultPort(next))) {
        throw new OutboundRefused("denied", `redirect to ${next.host} is not allowed`);
      }
      url = next;
      const keepMethod = response.status === 307 || response.status === 308;
      response = await checkedFetch(
        url,
        {
          method: keepMethod ? request.method : "GET",
          headers: request.headers,
          signal: request.signal,
        },
        reachable(url),
      );
    }
    return response;
  } catch (error) {
    if (error instanceof AddressRefused) throw new OutboundRefused("denied", error.message);
    throw error;
  }
}
