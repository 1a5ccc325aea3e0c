#!/usr/bin/env python3
"""The independent side of carimbo's JAdES interoperability test, written with jwcrypto.

    jwcrypto_interop.py check
        exit 0 if jwcrypto can be imported, 3 if not.
    jwcrypto_interop.py verify PAYLOAD SIGNATURE
        Verify a carimbo signature the way any JOSE consumer would: take the signing
        certificate from the protected header's x5c, check x5t#S256 against it, and verify
        the flattened JWS over the detached PAYLOAD bytes. Prints OK and exits 0, else 1.
    jwcrypto_interop.py sign PAYLOAD KEY.pem CHAIN.pem ALG IAT
        Sign PAYLOAD bytes with jwcrypto as a flattened JWS with detached payload and a
        JAdES baseline-B protected header (alg, iat, x5c, x5t#S256); print the JSON.
"""
import base64
import hashlib
import json
import sys


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pem_blocks(text: str):
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("-----BEGIN CERTIFICATE-----"):
            current = []
        elif line.startswith("-----END CERTIFICATE-----"):
            blocks.append(base64.b64decode("".join(current)))
            current = None
        elif current is not None:
            current.append(line.strip())
    return blocks


def verify(payload_path, signature_path):
    from cryptography import x509
    from jwcrypto import jwk, jws

    payload = open(payload_path, "rb").read()
    document = json.load(open(signature_path))
    header = json.loads(b64url_decode(document["protected"]))
    leaf_der = base64.b64decode(header["x5c"][0])
    if header.get("x5t#S256") != b64url(hashlib.sha256(leaf_der).digest()):
        print("x5t#S256 does not match the first x5c certificate")
        return 1
    certificate = x509.load_der_x509_certificate(leaf_der)
    key = jwk.JWK.from_pyca(certificate.public_key())
    token = jws.JWS()
    token.deserialize(json.dumps(document))
    try:
        token.verify(key, detached_payload=payload)
    except Exception as error:  # jwcrypto raises InvalidJWSSignature and friends
        print(f"verification failed: {error!r}")
        return 1
    print(f"OK {header['alg']} {certificate.subject.rfc4514_string()}")
    return 0


def sign(payload_path, key_path, chain_path, alg, iat):
    from jwcrypto import jwk, jws

    payload = open(payload_path, "rb").read()
    key = jwk.JWK.from_pem(open(key_path, "rb").read())
    chain = pem_blocks(open(chain_path).read())
    protected = {
        "alg": alg,
        "iat": int(iat),
        "x5c": [base64.b64encode(der).decode() for der in chain],
        "x5t#S256": b64url(hashlib.sha256(chain[0]).digest()),
    }
    token = jws.JWS(payload)
    token.add_signature(key, alg=alg, protected=json.dumps(protected))
    document = json.loads(token.serialize())
    document.pop("payload", None)  # detached (RFC 7515 appendix F)
    print(json.dumps(document))
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "check":
        try:
            import jwcrypto  # noqa: F401
        except ImportError:
            return 3
        return 0
    if len(argv) == 4 and argv[1] == "verify":
        return verify(argv[2], argv[3])
    if len(argv) == 7 and argv[1] == "sign":
        return sign(*argv[2:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
