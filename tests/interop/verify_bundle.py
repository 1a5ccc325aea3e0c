#!/usr/bin/env python3
"""An auditor's own evidence-bundle checker, written from docs/evidence-bundle.md alone (no
carimbo code), with Python's standard library, `cryptography` and `jwcrypto`.

    verify_bundle.py check            exit 0 if jwcrypto can be imported, 3 if not
    verify_bundle.py BUNDLE.json      print OK ... and exit 0, or FAIL <pointer>: why and exit 1

It re-computes what needs no certificate path validation: every file hash, the hash chain, the
definition pins, each signed payload against its event (case, form, step, action, data hash,
previous event hash, signer), each JWS signature value with the key of its x5c[0] (and x5t#S256),
that `simple` acts and the bundle are sealed by the bundled service certificate, and the seal's
member digests. Path validation, CRLs and levels are left to carimbo or another JAdES validator.

JCS (RFC 8785) here is json.dumps with sorted keys, no whitespace and UTF-8 output, which is
exact for the bundle's content (ASCII keys, integers, strings).
"""
import base64
import hashlib
import json
import sys


class Fail(Exception):
    def __init__(self, pointer, why):
        super().__init__(f"{pointer}: {why}")


def jcs(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pem_first_der(text: str) -> bytes:
    lines = text.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----", 1)[0]
    return base64.b64decode("".join(lines.split()))


def verify_jws(pointer, protected, signature, payload_bytes):
    """Verifies the JWS value with x5c[0]; returns the DER of x5c[0]."""
    from cryptography import x509
    from jwcrypto import jwk, jws

    header = json.loads(b64url_decode(protected))
    leaf = base64.b64decode(header["x5c"][0])
    if header.get("x5t#S256") != base64.urlsafe_b64encode(hashlib.sha256(leaf).digest()).rstrip(b"=").decode():
        raise Fail(pointer, "x5t#S256 is not the hash of x5c[0]")
    key = jwk.JWK.from_pyca(x509.load_der_x509_certificate(leaf).public_key())
    token = jws.JWS()
    token.deserialize(json.dumps({"protected": protected, "signature": signature}))
    try:
        token.verify(key, detached_payload=payload_bytes)
    except Exception as error:
        raise Fail(pointer, f"the signature value does not verify: {error!r}")
    return leaf


def check_file(pointer, f, text=True):
    data = f["text"].encode() if text else base64.b64decode(f["base64"], validate=True)
    if sha(data) != f["sha256"]:
        raise Fail(pointer, f"{f['name']} does not hash to its sha256")


def verify(path):
    b = json.load(open(path, encoding="utf-8"))
    if b["format"] != "carimbo-evidence-bundle" or b["format_version"] != 1:
        raise Fail("/format", "not a version 1 bundle")
    d, pki, events = b["definitions"], b["pki"], b["events"]
    check_file("/definitions/form", d["form"])
    check_file("/definitions/workflow", d["workflow"])
    for i, f in enumerate(d["reference"]):
        check_file(f"/definitions/reference/{i}", f)
    check_file("/pki/trust_list", pki["trust_list"])
    for i, f in enumerate(pki["trust_certificates"]):
        check_file(f"/pki/trust_certificates/{i}", f)
    check_file("/pki/service_certificate", pki["service_certificate"])
    for i, f in enumerate(pki["crls"]):
        check_file(f"/pki/crls/{i}", f, text=False)
    service = pem_first_der(pki["service_certificate"]["text"])

    prev, data, signatures = "0" * 64, None, 0
    form_ref = {"id": d["form"]["id"], "version": d["form"]["version"], "hash": "sha256:" + d["form"]["sha256"]}
    for k, e in enumerate(events):
        p = f"/events/{k}"
        if e["case_id"] != b["case_id"] or e["seq"] != k + 1 or e["prev_hash"] != prev:
            raise Fail(p, "the event is out of place (case_id, seq or prev_hash)")
        chained = {k2: e[k2] for k2 in ("case_id", "seq", "recorded_at", "prev_hash", "body")}
        # The disclosures of restricted fields are outside the chain (docs/evidence-bundle.md).
        chained["body"] = {m: v for m, v in e["body"].items() if m != "disclosures"}
        if sha(jcs(chained)) != e["hash"]:
            raise Fail(p, "the event does not hash to its hash")
        prev = e["hash"]
        body = e["body"]
        kind = body["type"]
        if kind == "submitted":
            if k != 0 or body["form"]["hash"] != d["form"]["sha256"] or body["workflow"]["hash"] != d["workflow"]["sha256"]:
                raise Fail(p + "/body", "the submission is not pinned to the bundled definitions")
            data, expect = body["data"], ("submit", "submit", body["submitter"])
        elif kind == "resubmitted":
            data, expect = body["data"], ("resubmit", "resubmit", body["by"])
        if kind in ("submitted", "resubmitted"):
            for field, d in body.get("disclosures", {}).items():
                commitment = body["data"].get(field)
                digest = "sha256:" + sha(jcs([d["salt"], field, d["value"]]))
                if not isinstance(commitment, dict) or list(commitment) != ["_sd"] or commitment["_sd"] != digest:
                    raise Fail(f"{p}/body/disclosures/{field}", "the disclosed value does not open the commitment in the signed data")
        elif kind == "acted":
            expect = (body["step"], body["action"], body["actor"])
        else:
            continue
        sig = body["signature"]
        jws_doc, payload = sig["jws"], sig["jws"]["payload"]
        wanted = {
            "case": b["case_id"],
            "form": form_ref,
            "step": expect[0],
            "action": expect[1],
            "data_hash": "sha256:" + sha(jcs(data)),
            "previous_event_hash": "sha256:" + e["prev_hash"],
            "signer": expect[2],
        }
        for field, value in wanted.items():
            if payload.get(field) != value:
                raise Fail(p + "/body/signature", f"the signed payload's {field} does not fit this act")
        leaf = verify_jws(p + "/body/signature/jws", jws_doc["protected"], jws_doc["signature"], jcs(payload))
        if (sig["level"] == "simple") != (leaf == service):
            raise Fail(p + "/body/signature/level", "a simple act must be sealed by the service certificate, and only it")
        signatures += 1
    if b["head"]["version"] != len(events) or b["head"]["last_hash"] != prev:
        raise Fail("/head", "the head does not match the events")

    seal = b["seal"]
    leaf = verify_jws("/seal", seal["protected"], seal["signature"], jcs(seal["payload"]))
    if leaf != service:
        raise Fail("/seal", "the bundle is not sealed by the service certificate")
    sp = seal["payload"]
    if sp["case"] != b["case_id"] or sp["version"] != len(events) or sp["last_event_hash"] != "sha256:" + prev:
        raise Fail("/seal/payload", "the seal is for other events")
    members = {m: "sha256:" + sha(jcs(v)) for m, v in b.items() if m != "seal"}
    for m, digest in members.items():
        if sp["digests"].get(m) != digest:
            raise Fail("/" + m, "changed after the bundle was sealed")
    if set(sp["digests"]) != set(members):
        raise Fail("/seal/payload/digests", "the sealed members are not the bundle's")
    return f"OK case {b['case_id']}: {len(events)} events, {signatures} signatures and the seal verify"


def main(argv):
    if len(argv) == 2 and argv[1] == "check":
        try:
            import jwcrypto  # noqa: F401
            import cryptography  # noqa: F401
        except ImportError:
            return 3
        return 0
    try:
        print(verify(argv[1]))
        return 0
    except Fail as failure:
        print(f"FAIL {failure}")
        return 1
    except (KeyError, TypeError, ValueError) as error:
        print(f"FAIL /: the bundle cannot be read: {error!r}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
