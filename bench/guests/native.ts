// @pier-engine native
// The bench's SDK guest on the native engine. A component granted `BENCH_PREFIX_<n>` serves its
// routes under that variable's value, so ten copies load side by side (the start-up rows).
import { defineComponent } from "@pier/guest";
import { env } from "@pier/guest/env";
import { benchRoutes } from "./sdk_routes.ts";

let prefix = "";
for (let i = 0; i < 10 && !prefix; i++) prefix = env(`BENCH_PREFIX_${i}`) ?? "";

export default defineComponent({ routes: benchRoutes(prefix) as never });
