// The Worker of worker-cpu.mjs: the same completion through client.chat() (/client) or plain fetch (/plain).
import { ResilientClient } from "sturdy-llm";

let client;
const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "cpu time" }] });

export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === "/plain") {
      const response = await fetch(`${env.MOCK_URL}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      return new Response((await response.json()).choices[0].message.content);
    }
    client ??= new ResilientClient({ targets: [{ name: "mock", provider: "openai", baseUrl: env.MOCK_URL, model: "m" }] });
    const result = await client.chat({ messages: [{ role: "user", content: "cpu time" }] });
    return new Response(result.text);
  },
};
