"""What pyHanko reads from each signature of a PDF: one JSON object per signature."""
import json
import sys

from pyhanko.pdf_utils.reader import PdfFileReader

with open(sys.argv[1], "rb") as f:
    reader = PdfFileReader(f)
    facts = []
    for sig in reader.embedded_signatures:
        attrs = [a["type"].native for a in sig.signer_info["signed_attrs"]]
        obj = sig.sig_object
        facts.append({
            "field": sig.field_name,
            "filter": str(obj.get("/Filter")),
            "sub_filter": str(obj.get("/SubFilter")),
            "signed_attributes": attrs,
            "reason": str(obj.get("/Reason", "")),
            "name": str(obj.get("/Name", "")),
            "m": str(obj.get("/M", "")),
            "docmdp": sig.docmdp_level.value if sig.docmdp_level is not None else None,
            "digest_algorithm": sig.signer_info["digest_algorithm"]["algorithm"].native,
            "signature_algorithm": sig.signer_info["signature_algorithm"]["algorithm"].native,
            "certificates": len(sig.signed_data["certificates"]),
        })
print(json.dumps(facts))
