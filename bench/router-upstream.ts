/** The no-op app of `bench/router.ts`: answers at once. */
export default {
  fetch: async (): Promise<Response> => new Response("ok"),
} satisfies ExportedHandler;
