/**
 * The demo's orders service, deployed in two versions behind a 90/10 split: answers an order
 * with its stock, which it asks `inventory` for through its router.
 */
interface Env {
  MESH: Fetcher;
  VERSION: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const id = new URL(request.url).pathname.split("/").pop() ?? "";
    const stock = await env.MESH.fetch(`http://inventory/stock/${encodeURIComponent(id)}`);
    return Response.json(
      {
        service: "orders",
        version: env.VERSION,
        order: id,
        caller: request.headers.get("weft-client-id"),
        budgetMs: Number(request.headers.get("weft-timeout-ms")),
        inventory: { status: stock.status, body: await stock.json().catch(() => null) },
      },
      { status: stock.ok ? 200 : 503 },
    );
  },
} satisfies ExportedHandler<Env>;
