"""Lists a PDF's annotations as pypdf reads them: one JSON object per annotation."""
import json
import sys

from pypdf import PdfReader

reader = PdfReader(sys.argv[1], strict=True)
found = []
for number, page in enumerate(reader.pages, start=1):
    for ref in page.get("/Annots") or []:
        annot = ref.get_object()
        found.append({
            "page": number,
            "subtype": str(annot["/Subtype"]).lstrip("/"),
            "rect": [float(v) for v in annot["/Rect"]],
            "contents": str(annot.get("/Contents", "")),
            "author": str(annot.get("/T", "")),
            "name": str(annot.get("/NM", "")),
            "has_appearance": "/N" in (annot.get("/AP") or {}),
            "quad_points": len(annot.get("/QuadPoints") or []),
            "ink_strokes": len(annot.get("/InkList") or []),
        })
print(json.dumps(found))
