/**
 * The demo's front end: answers `GET /` by asking `orders` for an order, through its router's
 * outbound side (`env.MESH`), and shows what each hop saw.
 */
interface Env {
  MESH: Fetcher;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/favicon.ico") return new Response(null, { status: 404 });
    const id = url.searchParams.get("order") ?? "42";
    const started = Date.now();
    const answer = await env.MESH.fetch(`http://orders/orders/${encodeURIComponent(id)}`, { headers: { "weft-timeout-ms": "2000" } });
    const body = await answer.text();
    let orders: unknown = body;
    try {
      orders = JSON.parse(body);
    } catch {
      // not JSON: show it as text
    }
    return Response.json(
      { service: "web", caller: request.headers.get("weft-client-id") ?? "(the internet: unauthenticated)", tookMs: Date.now() - started, orders: { status: answer.status, body: orders } },
      { status: answer.ok ? 200 : 502 },
    );
  },
} satisfies ExportedHandler<Env>;
