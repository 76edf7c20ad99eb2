// The reload row's guest, in two versions (reload_a.js, reload_b.js): `GET /version` answers
// the version, so the bench sees when the new one serves.
import { respond } from "./handler.js";

/** The exports of version `version`. */
export function reloadGuest(version) {
  return {
    initEndpoint: {
      getManifest: () => JSON.stringify({ http_handlers: [{ method: "get", path: "/version" }] }),
    },
    sqliteFunctionEndpoint: {
      dispatchScalarFunction() {
        throw { tag: "other", val: "no SQL functions here" };
      },
    },
    incomingHandler: { handle: (_request, out) => respond(out, 200, version) },
  };
}
