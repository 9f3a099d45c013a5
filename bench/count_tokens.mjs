// Reads a JSON array of strings on stdin, prints their token counts (Anthropic's published Claude tokenizer).
import { countTokens } from "@anthropic-ai/tokenizer";
let data = "";
process.stdin.on("data", (chunk) => (data += chunk));
process.stdin.on("end", () => console.log(JSON.stringify(JSON.parse(data).map((text) => countTokens(text)))));
