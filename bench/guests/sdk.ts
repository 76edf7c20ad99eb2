// The bench's SDK guest on SpiderMonkey: the native engine's routes, unprefixed (a SpiderMonkey
// build runs its top level before any capability is there, so it reads no env var there).
import { defineComponent } from "@pier/guest";
import { benchRoutes } from "./sdk_routes.ts";

export default defineComponent({ routes: benchRoutes("") as never });
