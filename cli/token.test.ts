import { describe, expect, it } from "vitest";
import { CliError } from "./command.ts";
import { decodeToken } from "./token.ts";

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const SIGNATURE = "c2lnbmF0dXJlLWJ5dGVzLXRoYXQtbXVzdC1uZXZlci1zaG93";

describe("decoding a token", () => {
  it("reads the header and claims and keeps nothing of the signature", () => {
    const token = `${b64({ alg: "ES256", kid: "k1", typ: "JWT" })}.${b64({ sub: "spiffe://td/worker/a", aud: "b", exp: 2 })}.${SIGNATURE}`;
    const decoded = decodeToken(token);
    expect(decoded).toEqual({ header: { alg: "ES256", kid: "k1", typ: "JWT" }, claims: { sub: "spiffe://td/worker/a", aud: "b", exp: 2 } });
    expect(JSON.stringify(decoded)).not.toContain(SIGNATURE);
  });

  it("refuses what is not a JWT without quoting it", () => {
    const secretish = "abc.def";
    for (const text of [secretish, `${b64({ alg: "ES256" })}.!!!.${SIGNATURE}`, `${Buffer.from("not json").toString("base64url")}.${b64({})}.${SIGNATURE}`, `${b64([1])}.${b64({})}.x`]) {
      let error: unknown;
      try {
        decodeToken(text);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CliError);
      expect((error as Error).message).toMatch(/^not a JWT/);
      expect((error as Error).message).not.toContain(text);
    }
  });
});
