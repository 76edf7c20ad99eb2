/**
 * The image's `HEALTHCHECK`: exits 0 when Pier's `/_/health` answers 200 on
 * the container's own port, 1 otherwise (or after 4 s).
 *
 * @module
 */
const port = Deno.env.get("PORT") ?? "8000";
try {
  const response = await fetch(`http://127.0.0.1:${port}/_/health`, {
    signal: AbortSignal.timeout(4000),
  });
  await response.body?.cancel();
  Deno.exit(response.ok ? 0 : 1);
} catch {
  Deno.exit(1);
}
