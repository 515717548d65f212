/**
 * The app behind the routers of `matching.test.ts`: it records the path and query of every
 * request its router forwards, so a test can tell what reached it, and calls other services
 * through its router with any path, so a test can drive the outbound side's route matching.
 * State is per isolate (one isolate per worker under Miniflare).
 *
 * - `GET /__seen` returns the paths seen so far (`path` is what the URL parser made of the
 *   request target: path and query).
 * - `GET /__call?to=SERVICE&path=PATH` calls `http://SERVICE` + PATH through `env.MESH` and
 *   returns the status and `weft-error` of the answer.
 * - Anything else is recorded and answered with 200 and the path.
 */
interface Env {
  NAME: string;
  MESH?: Fetcher;
}

const seen: string[] = [];

/** The path and query of a URL as a string, as the URL parser left them. */
const targetOf = (url: string) => url.slice(url.indexOf("/", url.indexOf("//") + 2));

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/__seen") return Response.json({ app: env.NAME, seen });
    if (url.pathname === "/__call") {
      if (!env.MESH) return Response.json({ error: "no MESH binding" }, { status: 500 });
      const answer = await env.MESH.fetch(`http://${url.searchParams.get("to")}${url.searchParams.get("path")}`);
      return Response.json({ status: answer.status, error: answer.headers.get("weft-error"), body: await answer.text() });
    }
    const target = targetOf(request.url);
    seen.push(target);
    return Response.json({ app: env.NAME, path: target });
  },
} satisfies ExportedHandler<Env>;
