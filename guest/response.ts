/**
 * Responses and HTML for route handlers: `json`, `text`, `html`, `redirect`,
 * `HttpError`, and the escaping `markup` template. Re-exported by
 * `@pier/guest`; this module imports no WIT interface, so it also runs
 * outside a component (the SDK's tests use it directly).
 *
 * @module
 */

/**
 * An error that becomes an HTTP response: `status` and the message as a
 * `text/plain` body.
 *
 * ```ts
 * if (!title) throw new HttpError(400, "title is required");
 * ```
 */
export class HttpError extends Error {
  /** `status`: an HTTP status; `message`: the response body; `headers`: extra response headers. */
  constructor(readonly status: number, message: string, readonly headers?: HeadersInit) {
    super(message);
    this.name = "HttpError";
  }

  /** The response this error stands for. */
  toResponse(): Response {
    const headers = new Headers(this.headers);
    headers.set("content-type", "text/plain; charset=utf-8");
    return respond(this.message, { status: this.status, headers });
  }
}

/** Response options with headers merged over a default content type. */
function withType(init: ResponseInit | undefined, type: string): ResponseInit {
  // Most responses give no headers: none to build and merge.
  if (init?.headers === undefined) return { ...init, headers: { "content-type": type } };
  const headers = new Headers(init.headers);
  if (!headers.has("content-type")) headers.set("content-type", type);
  return { ...init, headers };
}

/** The text bodies of the responses made here, by response (see {@link textBody}). */
const texts = new WeakMap<Response, string>();

/** `new Response(body, init)`, its body remembered when it is text. */
function respond(body: BodyInit | null, init: ResponseInit): Response {
  const response = new Response(body, init);
  if (typeof body === "string") texts.set(response, body);
  return response;
}

/**
 * The body of `response` when a helper here made it from text and nothing
 * read it since: the SDK's WebAssembly backend writes it at once instead of
 * reading the body stream, which under SpiderMonkey is interpreted work of
 * several promises per chunk. Not part of the public API.
 */
export function textBody(response: Response): string | undefined {
  return response.bodyUsed ? undefined : texts.get(response);
}

/**
 * A JSON response. `bigint`s are written as numbers when a double holds them
 * exactly and as strings otherwise.
 */
export function json(value: unknown, init?: ResponseInit): Response {
  const body = JSON.stringify(value, (_key, v) => {
    if (typeof v !== "bigint") return v;
    return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  });
  return respond(body, withType(init, "application/json"));
}

/** A plain-text response; `body` may be a stream. */
export function text(body: string | ReadableStream<Uint8Array>, init?: ResponseInit): Response {
  return respond(body, withType(init, "text/plain; charset=utf-8"));
}

/**
 * An HTML response. Build the markup with {@link markup} so interpolated
 * values are escaped; a plain string is sent as it is.
 */
export function html(
  body: string | Markup | ReadableStream<Uint8Array>,
  init?: ResponseInit,
): Response {
  const content = body instanceof Markup ? body.toString() : body;
  return respond(content, withType(init, "text/html; charset=utf-8"));
}

/** A redirect to `location` (relative or absolute), 302 unless `status` says otherwise. */
export function redirect(location: string | URL, status = 302): Response {
  return new Response(null, { status, headers: { location: String(location) } });
}

/** HTML that is safe to embed as it is: made by {@link markup}. */
export class Markup {
  /** `html`: markup that needs no escaping. */
  constructor(readonly html: string) {}
  /** The markup. */
  toString(): string {
    return this.html;
  }
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes `&`, `<`, `>`, `"` and `'` so `value` reads as text in HTML content and attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function renderValue(value: unknown): string {
  if (value instanceof Markup) return value.html;
  if (Array.isArray(value)) return value.map(renderValue).join("");
  if (value === null || value === undefined || value === false) return "";
  return escapeHtml(String(value));
}

/**
 * A tagged template for HTML: every `${value}` is escaped, except nested
 * `markup` results (arrays of them are joined); `null`, `undefined` and
 * `false` render nothing.
 *
 * ```ts
 * const items = rows.map(([title]) => markup`<li>${title}</li>`);
 * return html(markup`<ul>${items}</ul>`);
 * ```
 */
export function markup(strings: TemplateStringsArray, ...values: unknown[]): Markup {
  let out = strings[0];
  values.forEach((value, i) => out += renderValue(value) + strings[i + 1]);
  return new Markup(out);
}
