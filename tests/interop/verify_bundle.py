#!/usr/bin/env python3
"""An auditor's own evidence-bundle checker, written from docs/evidence-bundle.md alone (no
carimbo code), with Python's standard library, `cryptography` and `jwcrypto`.

    verify_bundle.py check            exit 0 if jwcrypto can be imported, 3 if not
    verify_bundle.py BUNDLE.json      print OK ... and exit 0, or FAIL <pointer>: why and exit 1

It re-computes what needs no certificate path validation: every file hash, the hash chain, the
definition and reference-data pins, the members of every event body and signature, the time
rules, each signed payload against its event (case, form, step, action, data hash, previous
event hash, signer), each JWS signature value with the key of its x5c[0] (and x5t#S256), the
trust list's history (every entry signed by the operator, whose certificate carries
id-tsl-kp-tslSigning and is issued by the list's first trust anchor; entries chained by hash, in
order of time), that `simple` acts and the bundle are sealed by the certificate the trust list
names as the service seal, in service at their times, and the seal's member digests. For B-T
and B-LTA (with `openssl ts -verify`, against the trust list's anchors, at the present time):
every signature time-stamp token (`header.etsiU` sigTst) over the ASCII of its JWS signature
value, with `iat` close before its genTime, and every archive time-stamp over the bytes the doc
says it covers, in time order, with a trust list in its validation data that continues the one
before it. Path validation at past times, CRLs, levels and proofs of existence are left to
carimbo or another JAdES validator.

JCS (RFC 8785) here is json.dumps with sorted keys, no whitespace and UTF-8 output, which is
exact for the bundle's content (ASCII keys, integers, strings).
"""
import base64
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

TSL_SIGNING = "0.4.0.2231.3.0"
RECORDED_AFTER_AT_SECONDS = 300

# Every member of every event body, as docs/evidence-bundle.md lists them (the list is complete).
BODY_MEMBERS = {
    "submitted": {"type", "case_id", "at", "form", "workflow", "submitter", "subject", "data", "signature", "disclosures", "reference"},
    "step_opened": {"type", "at", "step", "seats"},
    "step_skipped": {"type", "at", "step", "reason"},
    "acted": {"type", "at", "step", "seat", "actor", "on_behalf_of", "delegation", "action", "comment", "signature"},
    "step_done": {"type", "at", "step"},
    "resubmitted": {"type", "at", "by", "data", "changes", "signature", "disclosures"},
    "withdrawn": {"type", "at", "by", "reason"},
    "reminded": {"type", "at", "step", "seat", "people"},
    "escalated": {"type", "at", "step", "seat", "added"},
    "completed": {"type", "at"},
    "rejected": {"type", "at", "by", "step"},
}
SIGNATURE_MEMBERS = {"level", "signer", "jws", "second_factor"}
JWS_MEMBERS = {"payload", "protected", "signature", "header"}
IAT_BEFORE_STAMP, IAT_AFTER_STAMP, CLOCK_SKEW = 15 * 60, 5 * 60, 300
PAYLOAD_MEMBERS = {"case", "form", "step", "action", "data_hash", "previous_event_hash", "signer", "time"}
TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?Z$")


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


def utc(pointer, text):
    """An RFC 3339 UTC time with `Z` as (seconds since the epoch, nanoseconds)."""
    import calendar
    import time as _time

    m = TIME.match(text) if isinstance(text, str) else None
    if not m:
        raise Fail(pointer, f"{text!r} is not an RFC 3339 UTC time ending in Z")
    seconds = calendar.timegm(_time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    nanos = int((m.group(2) or ".0")[1:].ljust(9, "0"))
    return (seconds, nanos)


def only(pointer, obj, allowed):
    extra = sorted(set(obj) - allowed)
    if extra:
        raise Fail(f"{pointer}/{extra[0]}", f"unknown member {extra[0]!r}")


def trust_history(text, service_der, exported_at):
    """Verifies the trust list's history; returns the service seal's (from, status) changes."""
    from cryptography import x509

    doc = json.loads(text)
    if doc.get("format") != "carimbo-trust-list" or doc.get("version") != 2:
        raise Fail("/pki/trust_list/text", "not a version 2 trust-list history")
    prev, last_at, operator, anchors, members, statuses = "sha256:" + "0" * 64, None, None, [], {}, {}
    for i, entry in enumerate(doc["entries"]):
        p = f"/pki/trust_list/text/entries/{i}"
        only(p, entry, {"payload", "protected", "signature"})
        payload = entry["payload"]
        only(p + "/payload", payload, {"seq", "at", "prev", "change"})
        if payload["seq"] != i + 1 or payload["prev"] != prev:
            raise Fail(p, "the entry is out of place (seq or prev)")
        at = utc(p + "/payload/at", payload["at"])
        if last_at is not None and at < last_at:
            raise Fail(p, "the entry takes effect before the previous one")
        change = payload["change"]
        header = json.loads(b64url_decode(entry["protected"]))
        signer = base64.b64decode(header["x5c"][0])
        if i == 0:
            if change.get("type") != "add_member" or change.get("service_type") != "trust_anchor":
                raise Fail(p, "the first entry must add a trust anchor")
            anchor = x509.load_der_x509_certificate(base64.b64decode(change["certificate"]))
            op = x509.load_der_x509_certificate(signer)
            eku = op.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            if TSL_SIGNING not in [o.dotted_string for o in eku]:
                raise Fail(p, "the operator's certificate lacks id-tsl-kp-tslSigning")
            op.verify_directly_issued_by(anchor)
            operator = signer
        elif signer != operator:
            raise Fail(p, "the entry is not signed by the trust-list operator")
        verify_jws(p, entry["protected"], entry["signature"], jcs(payload))
        if change["type"] == "add_member":
            if change["member"] in members:
                raise Fail(p, "the member is already on the list")
            members[change["member"]] = (change["service_type"], base64.b64decode(change["certificate"]))
            statuses[change["member"]] = [(at, "listed")]
        elif change["type"] == "operator":
            operator = base64.b64decode(change["certificate"])
        else:
            if change["member"] not in members:
                raise Fail(p, "the entry names a member that is not on the list")
            if change["type"] == "status":
                statuses[change["member"]].append((at, change["status"]))
        prev = "sha256:" + sha(jcs(entry))
        last_at = at
    seals = [m for m, (kind, der) in members.items() if kind == "service_seal" and der == service_der]
    if not seals:
        raise Fail("/pki/service_certificate", "the trust list names no service seal with this certificate")
    return statuses[seals[0]]


def anchors_pem(text):
    """The trust anchors a trust-list history adds, as one PEM file's text."""
    out = []
    for entry in json.loads(text)["entries"]:
        change = entry["payload"]["change"]
        if change.get("type") == "add_member" and change.get("service_type") == "trust_anchor":
            b64 = change["certificate"]
            out.append("-----BEGIN CERTIFICATE-----\n" + "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) + "\n-----END CERTIFICATE-----\n")
    return "".join(out)


def check_token(pointer, token, stamped, anchors):
    """`openssl ts -verify` of an RFC 3161 token over `stamped` (SHA-256 imprint) against the
    anchors; returns its genTime in seconds since 1970."""
    with tempfile.TemporaryDirectory() as tmp:
        tok, ca = f"{tmp}/token.der", f"{tmp}/anchors.pem"
        open(tok, "wb").write(token)
        open(ca, "w").write(anchors)
        digest = hashlib.sha256(stamped).hexdigest()
        r = subprocess.run(["openssl", "ts", "-verify", "-digest", digest, "-in", tok, "-token_in", "-CAfile", ca], capture_output=True, text=True)
        if r.returncode != 0 or "Verification: OK" not in r.stdout:
            raise Fail(pointer, "the time-stamp token does not verify (openssl ts -verify): " + (r.stdout + r.stderr).strip().splitlines()[-1])
        text = subprocess.run(["openssl", "ts", "-reply", "-in", tok, "-token_in", "-text"], capture_output=True, text=True).stdout
    m = re.search(r"Time stamp: (\w{3}\s+\d+ \d{2}:\d{2}:\d{2})(\.\d+)? (\d{4}) GMT", text)
    if not m:
        raise Fail(pointer, "the time-stamp token has no readable genTime")
    t = datetime.strptime(f"{m.group(1)} {m.group(3)}", "%b %d %H:%M:%S %Y").replace(tzinfo=timezone.utc)
    return int(t.timestamp())


def sig_tst(pointer, jws_doc, anchors):
    """The B-T signature time-stamp of a JWS, if it has one: checked, and `iat` against it."""
    if "header" not in jws_doc:
        return
    header = jws_doc["header"]
    only(pointer + "/header", header, {"etsiU"})
    if len(header["etsiU"]) != 1:
        raise Fail(pointer + "/header", "etsiU must hold exactly one entry")
    entry = json.loads(b64url_decode(header["etsiU"][0]))
    only(pointer + "/header", entry, {"sigTst"})
    only(pointer + "/header", entry["sigTst"], {"tstTokens"})
    tokens = entry["sigTst"]["tstTokens"]
    if len(tokens) != 1:
        raise Fail(pointer + "/header", "sigTst must hold exactly one token")
    only(pointer + "/header", tokens[0], {"val"})
    gen = check_token(pointer + "/header", base64.b64decode(tokens[0]["val"], validate=True), jws_doc["signature"].encode("ascii"), anchors)
    iat = json.loads(b64url_decode(jws_doc["protected"])).get("iat")
    if not isinstance(iat, int) or iat > gen + IAT_AFTER_STAMP or iat < gen - IAT_BEFORE_STAMP:
        raise Fail(pointer + "/header", "the claimed signing time is not close before the time-stamp's time")


def archive_stamps(b, exported_at):
    """Each archive time-stamp k over JCS(the bundle with archive_timestamps = the first k entries
    and entry k without its token), in time order; returns how many."""
    entries = b.get("archive_timestamps", [])
    trust_text, previous = b["pki"]["trust_list"]["text"], exported_at[0]
    for k, entry in enumerate(entries):
        p = f"/archive_timestamps/{k}"
        only(p, entry, {"validation_data", "token"})
        vd = entry["validation_data"]
        only(p + "/validation_data", vd, {"trust_list", "crls"})
        for i, f in enumerate(vd.get("crls", [])):
            check_file(f"{p}/validation_data/crls/{i}", f, text=False)
        if "trust_list" in vd:
            check_file(p + "/validation_data/trust_list", vd["trust_list"])
            old, new = json.loads(trust_text)["entries"], json.loads(vd["trust_list"]["text"])["entries"]
            if new[:len(old)] != old:
                raise Fail(p + "/validation_data/trust_list/text", "the trust list does not continue the bundle's")
            trust_text = vd["trust_list"]["text"]
        covered = dict(b)
        covered["archive_timestamps"] = entries[:k] + [{m: v for m, v in entry.items() if m != "token"}]
        gen = check_token(p, base64.b64decode(entry["token"], validate=True), jcs(covered), anchors_pem(trust_text))
        if gen + CLOCK_SKEW < previous:
            raise Fail(p + "/token", "the archive time-stamp is older than the export or the previous stamp")
        previous = gen
    return len(entries)


def status_at(changes, t):
    current = None
    for since, status in changes:
        if since <= t:
            current = status
    return current


def check_file(pointer, f, text=True):
    data = f["text"].encode() if text else base64.b64decode(f["base64"], validate=True)
    if sha(data) != f["sha256"]:
        raise Fail(pointer, f"{f['name']} does not hash to its sha256")


def verify(path):
    b = json.load(open(path, encoding="utf-8"))
    if b["format"] != "carimbo-evidence-bundle" or b["format_version"] != 2:
        raise Fail("/format", "not a version 2 bundle")
    d, pki, events = b["definitions"], b["pki"], b["events"]
    check_file("/definitions/form", d["form"])
    check_file("/definitions/workflow", d["workflow"])
    for i, f in enumerate(d["reference"]):
        check_file(f"/definitions/reference/{i}", f)
    check_file("/pki/trust_list", pki["trust_list"])
    check_file("/pki/service_certificate", pki["service_certificate"])
    for i, f in enumerate(pki["crls"]):
        check_file(f"/pki/crls/{i}", f, text=False)
    service = pem_first_der(pki["service_certificate"]["text"])
    exported_at = utc("/exported_at", b["exported_at"])
    seal_status = trust_history(pki["trust_list"]["text"], service, exported_at)
    anchors = anchors_pem(pki["trust_list"]["text"])
    pins = events[0]["body"].get("reference") if events else None
    if pins is not None:
        bundled = {f["name"]: f["sha256"] for f in d["reference"]}
        if bundled != pins:
            raise Fail("/definitions/reference", "the reference data is not the version the case was opened with")

    prev, data, signatures, last_recorded, last_at = "0" * 64, None, 0, None, None
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
        only(p + "/body", body, BODY_MEMBERS[kind])
        recorded, at = utc(p + "/recorded_at", e["recorded_at"]), utc(p + "/body/at", body["at"])
        if at > recorded or recorded[0] - at[0] > RECORDED_AFTER_AT_SECONDS or (last_at and at < last_at) or (last_recorded and recorded < last_recorded):
            raise Fail(p + "/body/at", "the event's at and recorded_at do not agree with the time rules")
        last_at, last_recorded = at, recorded
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
        only(p + "/body/signature", sig, SIGNATURE_MEMBERS)
        jws_doc, payload = sig["jws"], sig["jws"]["payload"]
        only(p + "/body/signature/jws", jws_doc, JWS_MEMBERS)
        only(p + "/body/signature/jws/payload", payload, PAYLOAD_MEMBERS)
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
        sig_tst(p + "/body/signature/jws", jws_doc, anchors)
        if (sig["level"] == "simple") != (leaf == service):
            raise Fail(p + "/body/signature/level", "a simple act must be sealed by the service certificate, and only it")
        if leaf == service and status_at(seal_status, recorded) != "granted":
            raise Fail(p + "/body/signature", "sealed when the trust list did not have the service seal in service")
        signatures += 1
    if b["head"]["version"] != len(events) or b["head"]["last_hash"] != prev:
        raise Fail("/head", "the head does not match the events")

    if last_recorded and exported_at < last_recorded:
        raise Fail("/exported_at", "exported before the last event was recorded")
    seal = b["seal"]
    leaf = verify_jws("/seal", seal["protected"], seal["signature"], jcs(seal["payload"]))
    if leaf != service:
        raise Fail("/seal", "the bundle is not sealed by the service certificate")
    if json.loads(b64url_decode(seal["protected"])).get("iat") != exported_at[0]:
        raise Fail("/seal/protected", "the seal's iat is not the bundle's exported_at")
    if status_at(seal_status, exported_at) != "granted":
        raise Fail("/pki/service_certificate", "the trust list did not have the service seal in service when the bundle was sealed")
    sp = seal["payload"]
    if sp["case"] != b["case_id"] or sp["version"] != len(events) or sp["last_event_hash"] != "sha256:" + prev:
        raise Fail("/seal/payload", "the seal is for other events")
    members = {m: "sha256:" + sha(jcs(v)) for m, v in b.items() if m not in ("seal", "archive_timestamps")}
    for m, digest in members.items():
        if sp["digests"].get(m) != digest:
            raise Fail("/" + m, "changed after the bundle was sealed")
    if set(sp["digests"]) != set(members):
        raise Fail("/seal/payload/digests", "the sealed members are not the bundle's")
    stamps = archive_stamps(b, exported_at)
    return f"OK case {b['case_id']}: {len(events)} events, {signatures} signatures, the seal and {stamps} archive time-stamp(s) verify"


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
