/** Test helpers that read what a stack answered as Web objects, whatever it made. */
import type { Fetch, MeshRequest, MeshResponse } from "../core/fetch.ts";
import { toWebResponse } from "../core/web.ts";

/** `fetch` with its answers as Web `Response`s (light ones converted), for tests that read bodies. */
export function web(fetch: Fetch): (request: MeshRequest) => Promise<Response> {
  return async (request) => toWebResponse(await fetch(request));
}

/** One answer as a Web `Response`. */
export async function webResponse(response: MeshResponse | Promise<MeshResponse>): Promise<Response> {
  return toWebResponse(await response);
}
