/**
 * The demo's inventory service: answers stock counts, slowly now and then and failing a
 * part of the time (`FAIL_PERCENT`), so the mesh's retries and latency show in `weft stat`.
 */
interface Env {
  FAIL_PERCENT: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const roll = Math.random() * 100;
    if (roll < Number(env.FAIL_PERCENT || "0")) return Response.json({ error: "inventory database hiccup" }, { status: 503 });
    // One call in ten is slow: the p99 in `weft stat` shows it.
    if (roll > 90) await new Promise((resolve) => setTimeout(resolve, 40));
    const id = new URL(request.url).pathname.split("/").pop() ?? "";
    return Response.json({ service: "inventory", item: id, inStock: (id.length * 7) % 13, caller: request.headers.get("weft-client-id") });
  },
} satisfies ExportedHandler<Env>;
