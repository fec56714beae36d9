"""pyHanko's side of the signing benchmark: sign every PDF named on stdin in place (the update
appended to the file, as Outpost's side does), one after the other in this one process, with the
same key type as Outpost (ECDSA P-256), a PAdES signature and bytes_reserved set. Prints the wall
time in seconds."""
import sys
import time

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers

key, cert = sys.argv[1], sys.argv[2]
signer = signers.SimpleSigner.load(key, cert)
paths = [line.strip() for line in sys.stdin if line.strip()]
meta = signers.PdfSignatureMetadata(
    field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES, reason="benchmark"
)
start = time.perf_counter()
for path in paths:
    with open(path, "r+b") as document:
        writer = IncrementalPdfFileWriter(document)
        signers.sign_pdf(writer, meta, signer=signer, in_place=True, bytes_reserved=16384)
print(time.perf_counter() - start)
