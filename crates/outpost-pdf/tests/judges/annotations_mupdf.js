// Lists a PDF's annotations as MuPDF (mutool 1.21) reads them: one JSON object per annotation.
// MuPDF reports bounds y-down in the displayed page; on an unrotated page whose crop box starts
// at the origin they convert back to PDF user space as below.
var doc = new PDFDocument(scriptArgs[0]);
var found = [];
for (var i = 0; i < doc.countPages(); i++) {
  var page = doc.loadPage(i);
  var height = page.bound()[3];
  var annots = page.getAnnotations();
  for (var j = 0; j < annots.length; j++) {
    var a = annots[j];
    var b = a.bound();
    found.push({
      page: i + 1,
      subtype: a.getType(),
      rect: [b[0], height - b[3], b[2], height - b[1]],
      contents: a.getContents(),
      author: a.getAuthor()
    });
  }
}
print(JSON.stringify(found));
