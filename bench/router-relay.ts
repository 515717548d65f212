/** A plain forwarding worker for `bench/router.ts`: the floor cost of one service-binding hop. */
interface Env {
  NEXT: Fetcher;
}

export default {
  fetch: (request: Request, env: Env): Promise<Response> => env.NEXT.fetch(request),
} satisfies ExportedHandler<Env>;
