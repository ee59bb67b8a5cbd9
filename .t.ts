import { renderHeader } from "./src/mime/headers.ts";
const ascii = { utf8: false, charset: "utf-8" };
for (const [n, v, w] of [["Subject", "é".repeat(40), 78], ["Subject", "Grüße aus Köln und München, bis bald, und vielen Dank für alles, was ihr getan habt!", 78], ["X-A-Rather-Long-Header-Name-Here-Ok", "ééééééééééééééééééé ééééééééééééééé", 78], ["Subject", "é".repeat(80), 200]] as const) {
  const r = renderHeader(n, v, { ...ascii, maxLineLength: w });
  console.log(r.split("\r\n").map((l) => `${l.length} ${l}`).join("\n"));
}
const r = renderHeader("To", [{ name: "Jürgen Groß-Übermensch von und zu Müllerhausen", address: "j@example.org" }, { name: "Zoë Faßbender", address: "zoe@example.org" }], ascii);
console.log(r.split("\r\n").map((l) => `${l.length} ${l}`).join("\n"));
