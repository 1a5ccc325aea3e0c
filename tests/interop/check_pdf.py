#!/usr/bin/env python3
"""Checks a printable record with tools that are not carimbo's (used by tests/pdf.rs).

    check_pdf.py seal FILE ROOT.pem CRL_DIR   pyHanko: the PAdES seal, intact and trusted
    check_pdf.py pdfa FILE                    pikepdf: the PDF/A-3b properties listed below

Prints one JSON object; exits 0 when every check passed, 1 otherwise.
"""
import json
import pathlib
import sys


def seal(path, root, crl_dir):
    from asn1crypto import crl as asn1_crl, pem
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    from pyhanko.keys import load_cert_from_pemder

    crls = []
    for f in sorted(pathlib.Path(crl_dir).glob("*.crl")):
        data = f.read_bytes()
        if pem.detect(data):
            data = pem.unarmor(data)[2]
        crls.append(asn1_crl.CertificateList.load(data))
    vc = ValidationContext(trust_roots=[load_cert_from_pemder(root)], crls=crls, allow_fetching=False, revocation_mode="soft-fail")
    out = {"signatures": 0}
    with open(path, "rb") as f:
        reader = PdfFileReader(f, strict=False)
        sigs = reader.embedded_signatures
        out["signatures"] = len(sigs)
        if not sigs:
            return out, False
        status = validate_pdf_signature(sigs[0], signer_validation_context=vc, ts_validation_context=vc)
        out.update({
            "intact": status.intact,
            "valid": status.valid,
            "trusted": status.trusted,
            "coverage": str(status.coverage),
            "signer": status.signing_cert.subject.human_friendly,
            "timestamp": status.timestamp_validity is not None and status.timestamp_validity.intact and status.timestamp_validity.valid and status.timestamp_validity.trusted,
            "subfilter": str(sigs[0].sig_object.get("/SubFilter")),
            "summary": status.summary(),
        })
        ok = status.intact and status.valid and status.trusted and status.coverage.name == "ENTIRE_FILE"
        return out, ok


def pdfa(path):
    import pikepdf

    checks = {}
    with pikepdf.open(path) as pdf:
        root = pdf.Root
        meta = pdf.open_metadata()
        checks["xmp_pdfaid_part_3"] = meta.get("pdfaid:part") == "3"
        checks["xmp_pdfaid_conformance_B"] = meta.get("pdfaid:conformance") == "B"
        intents = root.get("/OutputIntents", [])
        checks["output_intent_pdfa_with_icc"] = len(intents) == 1 and intents[0].get("/S") == "/GTS_PDFA1" and "/DestOutputProfile" in intents[0] and int(intents[0].DestOutputProfile.get("/N", 0)) == 3
        checks["header_pdf_1_7"] = pdf.pdf_version == "1.7"
        checks["trailer_id"] = "/ID" in pdf.trailer
        fonts_ok, fonts = True, 0
        for page in pdf.pages:
            for name, font in page.Resources.get("/Font", {}).items():
                fonts += 1
                for desc in font.get("/DescendantFonts", [font]):
                    fd = desc.get("/FontDescriptor")
                    if fd is None or not any(k in fd for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                        fonts_ok = False
                if "/ToUnicode" not in font:
                    fonts_ok = False
        checks["every_font_embedded_with_tounicode"] = fonts_ok and fonts > 0
        text = ""
        forbidden = False
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Dictionary):
                if obj.get("/S") in ("/JavaScript", "/Launch", "/URI", "/GoToR", "/ImportData") or "/JS" in obj:
                    forbidden = True
                if "/Encrypt" in obj:
                    forbidden = True
        checks["no_javascript_actions_or_external_references"] = not forbidden and "/Names" in root and "/JavaScript" not in root.Names and "/OpenAction" not in root and "/AA" not in root
        af = root.get("/AF", [])
        ok_af = False
        for spec in af:
            ef = spec.get("/EF", {})
            stream = ef.get("/F")
            if stream is not None and spec.get("/AFRelationship") in ("/Source", "/Data") and "/UF" in spec and stream.get("/Subtype") == "/application/json" and "/ModDate" in stream.get("/Params", {}):
                ok_af = json.loads(stream.read_bytes()).get("format", "").startswith("carimbo")
        checks["evidence_bundle_as_associated_file"] = ok_af
        checks["no_info_dict_or_consistent"] = "/Info" not in pdf.trailer
    return checks, all(checks.values())


def main():
    mode = sys.argv[1]
    if mode == "seal":
        out, ok = seal(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "pdfa":
        out, ok = pdfa(sys.argv[2])
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out, default=str))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
