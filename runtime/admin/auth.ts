/**
 * Who may use Pier's admin page and its write endpoints: a holder of
 * `PIER_ADMIN_TOKEN` (as a bearer or as the login cookie), or, with no token
 * set, a loopback client reading the page. A cookie never authorizes a
 * cross-site write.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** The cookie the login form sets; its path keeps it to Pier's own paths. */
const ADMIN_COOKIE = "pier_admin";

/** Compares in constant time (over digests, so the lengths need not match). */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The `Set-Cookie` value that logs a browser in with `token`. */
export function loginCookie(token: string): string {
  return `${ADMIN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/_/`;
}

/** The `Set-Cookie` value that logs a browser out: the cookie, expired. */
export function logoutCookie(): string {
  return `${ADMIN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/_/; Max-Age=0`;
}

/** The admin token the request carries: its bearer, else its login cookie. */
function givenToken(request: Request): { token: string; viaCookie: boolean } | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
  if (bearer !== undefined) return { token: bearer.trim(), viaCookie: false };
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === ADMIN_COOKIE) {
      try {
        return { token: decodeURIComponent(value.join("=")), viaCookie: true };
      } catch {
        return undefined;
      }
    }
  }
}

/**
 * Whether a request was sent by a page of another site: a browser says so in
 * `Sec-Fetch-Site`, or in an `Origin` other than the request's own.
 */
export function crossSite(request: Request): boolean {
  const site = request.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") return true;
  const origin = request.headers.get("origin");
  return origin !== null && origin !== new URL(request.url).origin;
}

/** Whether a remote address is the machine's own (IPv4 127/8, `::1`, IPv4-mapped loopback). */
export function isLoopback(address: Deno.Addr | undefined): boolean {
  if (address?.transport !== "tcp" && address?.transport !== "udp") return false;
  const host = address.hostname.replace(/^\[|\]$/g, "");
  return host === "::1" || /^(::ffff:)?127\./i.test(host);
}

/**
 * Why the request may not act as the admin, or undefined when it may: its
 * bearer or cookie must match `adminToken`; a cookie must come same-site
 * for a `write` (SameSite=Strict already keeps it off cross-site requests
 * in today's browsers; the header check covers the others).
 */
export function refusal(
  request: Request,
  adminToken: string | undefined,
  write: boolean,
): "no-token-set" | "unauthenticated" | "cross-site" | undefined {
  if (!adminToken) return "no-token-set";
  const given = givenToken(request);
  if (given === undefined || !sameSecret(given.token, adminToken)) return "unauthenticated";
  if (write && given.viaCookie && crossSite(request)) return "cross-site";
}
