/**
 * The client app of `bench/router.ts`, in workerd: `GET /mesh` calls service `b` through its
 * router (app → router → router → app), `GET /direct` calls b's app over a direct service
 * binding (app → app), and `GET /relay` through two plain forwarding workers (the cost of the
 * two extra hops alone), so every path starts and ends in the same place. A second instance
 * (`TARGET=bt`) calls through the traced routers. `GET /mesh-auth` calls service `b2` through
 * the mesh with the caller's `authorization` passed on: b2's router verifies it as an end-user
 * token.
 */
interface Env {
  MESH: Fetcher;
  DIRECT: Fetcher;
  RELAY: Fetcher;
  /** The service `/mesh` calls (`b` by default; the traced pair's client calls `bt`). */
  TARGET?: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (path === "/mesh-auth") {
      const answer = await env.MESH.fetch("http://b2/", { headers: { authorization: request.headers.get("authorization") ?? "" } });
      return new Response(await answer.text(), { status: answer.status });
    }
    const target = path === "/mesh" ? env.MESH : path === "/direct" ? env.DIRECT : path === "/relay" ? env.RELAY : undefined;
    if (!target) return new Response("GET /mesh, /mesh-auth, /direct or /relay", { status: 404 });
    const answer = await target.fetch(target === env.MESH ? `http://${env.TARGET ?? "b"}/` : "http://b/");
    return new Response(await answer.text(), { status: answer.status });
  },
} satisfies ExportedHandler<Env>;
