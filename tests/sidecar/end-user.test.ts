/**
 * End-user authentication in the real sidecar: a pod of service `api` whose inbound side
 * verifies tokens from an issuer Weft did not write (keys by openssl, tokens by PyJWT, its
 * JWKS on a plain HTTP server), called on 4143 with Node's fetch as a client would.
 */
import { afterAll, beforeAll, describe } from "vitest";
import { endUserCases, endUserResources, type EndUserReply } from "../end-user/cases.ts";
import { startExternalIssuer, type ExternalIssuer } from "../end-user/issuer.ts";
import { admin, startMesh, startPod, type Mesh, type Pod } from "./pods.ts";

let mesh: Mesh;
let pod: Pod;
let issuer: ExternalIssuer;

beforeAll(async () => {
  issuer = await startExternalIssuer();
  mesh = await startMesh();
  await admin(mesh.control, "POST", "/v1/apply", { resources: endUserResources(issuer) });
  pod = await startPod(mesh, { name: "api-1", ip: "127.0.0.41", service: "api" });
  mesh.pods.push(pod);
}, 90_000);

afterAll(async () => {
  await mesh?.destroy();
  await issuer?.stop();
});

const call = async (path: string, headers: Record<string, string> = {}): Promise<EndUserReply> => {
  const response = await fetch(`${pod.sidecar.inbound}${path}`, { headers });
  const body = (await response.json()) as { headers?: Record<string, string> };
  return { status: response.status, headers: response.headers, seen: body.headers };
};

describe("end-user authentication in the sidecar", () => {
  endUserCases(() => ({ issuer, call }));
});
