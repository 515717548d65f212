/**
 * Reading a workload identity token (SPEC.md section 4) without trusting it: the header and
 * claims only. The signature is never decoded, kept or shown, and no message repeats the
 * token, since a token is a bearer credential until it expires.
 */
import { CliError } from "./command.ts";

/** The parts of a token `weft identity` shows. */
export interface DecodedToken {
  header: { alg: string | undefined; kid: string | undefined; typ: string | undefined };
  claims: Record<string, unknown>;
}

function part(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    throw new CliError(`not a JWT: its ${what} is not base64url-encoded JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new CliError(`not a JWT: its ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** The header and claims of a compact JWT; a `CliError` (never quoting the token) when it is not one. */
export function decodeToken(token: string): DecodedToken {
  const parts = token.trim().split(".");
  if (parts.length !== 3 || parts.some((p, i) => i < 2 && !/^[A-Za-z0-9_-]+$/.test(p))) {
    throw new CliError("not a JWT: expected three base64url parts separated by dots (header.claims.signature)");
  }
  const header = part(parts[0]!, "header");
  const str = (value: unknown) => (typeof value === "string" ? value : undefined);
  return { header: { alg: str(header.alg), kid: str(header.kid), typ: str(header.typ) }, claims: part(parts[1]!, "claims") };
}

/** Algorithms the mesh accepts (SPEC.md section 4): ES256, and ES384 or RS256 when configured. */
export const ACCEPTED_ALGORITHMS = ["ES256", "ES384", "RS256"];
