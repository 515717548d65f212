/**
 * The app behind each router in the end-to-end tests: tells what it saw (caller identity,
 * budget, attempt), calls further services through its router when asked, and can be made to
 * fail or stall, all per isolate (one isolate per worker under Miniflare).
 *
 * - `?call=b,c` calls `http://b/?call=c` through `env.MESH` (other parameters passed on),
 *   forwarding `weft-timeout-ms` and the trace headers (`traceparent`, `tracestate`, `b3`)
 *   as an instrumented app does, and embeds the answer.
 * - At the last hop (no `call`), `?delay=ms` waits before answering and `?status=n` answers
 *   with that status.
 * - `POST /__mode?fail=1` makes every later answer a 500 (`fail=0` heals it).
 * - `GET /__seen` returns what the last requests looked like.
 * - `POST /__hold?on=1` holds every mirrored copy (`weft-mirror: 1`) unanswered until
 *   `on=0`; `/__seen` counts copies that arrived and that were answered.
 */
interface Env {
  NAME: string;
  MESH?: Fetcher;
}

interface Seen {
  clientId: string | null;
  hadIdentity: boolean;
  timeoutMs: number | null;
  attempt: string | null;
  traceparent: string | null;
  b3: string | null;
}

let failing = false;
let hits = 0;
let holding = false;
let mirrored = 0;
let mirrorsAnswered = 0;
const seen: Seen[] = [];

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/__mode") {
      failing = url.searchParams.get("fail") === "1";
      return Response.json({ app: env.NAME, failing });
    }
    if (url.pathname === "/__hold") {
      holding = url.searchParams.get("on") === "1";
      return Response.json({ app: env.NAME, holding });
    }
    if (url.pathname === "/__seen") return Response.json({ app: env.NAME, hits, mirrored, mirrorsAnswered, seen: seen.slice(-20) });
    hits++;
    if (request.headers.get("weft-mirror") === "1") {
      mirrored++;
      // Polled, not awaited on a promise another request resolves (workerd ties promises to requests).
      for (let i = 0; holding && i < 3_000; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      mirrorsAnswered++;
      return Response.json({ app: env.NAME, mirrored: true });
    }
    const budget = request.headers.get("weft-timeout-ms");
    const mine: Seen = {
      clientId: request.headers.get("weft-client-id"),
      hadIdentity: request.headers.has("weft-identity"),
      timeoutMs: budget === null ? null : Number(budget),
      attempt: request.headers.get("weft-attempt"),
      traceparent: request.headers.get("traceparent"),
      b3: request.headers.get("b3"),
    };
    seen.push(mine);
    if (seen.length > 100) seen.shift();
    if (failing) return Response.json({ app: env.NAME, error: "failing on purpose" }, { status: 500 });
    const body: Record<string, unknown> = { app: env.NAME, ...mine };
    const call = url.searchParams.get("call");
    if (!call) {
      const delay = Number(url.searchParams.get("delay") ?? 0);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      return Response.json(body, { status: Number(url.searchParams.get("status") ?? 200) });
    }
    if (env.MESH) {
      const [next, ...rest] = call.split(",");
      const query = new URLSearchParams(url.searchParams);
      query.delete("call");
      if (rest.length) query.set("call", rest.join(","));
      const headers: Record<string, string> = budget === null ? {} : { "weft-timeout-ms": budget };
      // Trace context, forwarded as an instrumented app forwards it.
      for (const name of ["traceparent", "tracestate", "b3"]) {
        const value = request.headers.get(name);
        if (value !== null) headers[name] = value;
      }
      const answer = await env.MESH.fetch(`http://${next}/?${query}`, { headers });
      body.downstream = { status: answer.status, error: answer.headers.get("weft-error"), body: await answer.json().catch(() => null) };
    }
    return Response.json(body);
  },
} satisfies ExportedHandler<Env>;
