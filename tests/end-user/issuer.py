"""An OIDC-style token issuer that is not Weft: PyJWT (Debian's python3-jwt) over keys made
by openssl. Reads one JSON request on stdin, writes one JSON answer on stdout.

  {"jwks": [{"kid": ..., "pem": path}]}                       -> {"keys": [JWK, ...]}
  {"sign": [{"kid", "pem", "alg", "claims", "mode"?}, ...]}  -> {"tokens": [token, ...]}

mode "none" makes an unsigned token (alg: none); mode "hs-public" signs with HS256 using the
PEM of the issuer's public key as the HMAC secret (the HS/RS confusion attack); otherwise
the token is signed with the private key at "pem" by PyJWT.
"""
import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def private_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def jwk_of(kid, path):
    key = private_key(path)
    public = key.public_key()
    if hasattr(public, "public_numbers") and hasattr(public.public_numbers(), "n"):
        jwk = json.loads(RSAAlgorithm.to_jwk(public))
        jwk["alg"] = "RS256"
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(public))
        jwk["alg"] = "ES256"
    jwk["kid"] = kid
    jwk["use"] = "sig"
    return jwk


def sign(spec):
    header = {"kid": spec["kid"], "typ": "JWT"}
    mode = spec.get("mode", "")
    if mode == "none":
        return jwt.encode(spec["claims"], None, algorithm="none", headers=header)
    if mode == "hs-public":
        secret = public_pem(private_key(spec["pem"]))
        signing_input = b64(json.dumps({"alg": "HS256", **header}).encode()) + "." + b64(json.dumps(spec["claims"]).encode())
        return signing_input + "." + b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    return jwt.encode(spec["claims"], private_key(spec["pem"]), algorithm=spec["alg"], headers=header)


request = json.load(sys.stdin)
if "jwks" in request:
    json.dump({"keys": [jwk_of(k["kid"], k["pem"]) for k in request["jwks"]]}, sys.stdout)
else:
    json.dump({"tokens": [sign(s) for s in request["sign"]]}, sys.stdout)
