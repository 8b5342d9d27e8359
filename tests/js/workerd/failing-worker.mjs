// A Worker whose upstream cannot be reached (`?dead=<origin>`): each way the package calls out (fetch,
// events, chat and chatStream over a chain of two targets), or with `?plain`, one plain fetch with a
// body, the baseline a Worker without the package logs. It answers with how each call settled and
// the promise rejections nobody handled.
import { ResilientClient } from "sturdy-llm";

const unhandled = [];
addEventListener("unhandledrejection", (event) => unhandled.push(String(event.reason)));

async function settled(promise) {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return error?.name ?? String(error);
  }
}

async function throughThePackage(dead) {
  const retry = { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5 };
  const targets = ["first", "second"].map((name) => ({ name, provider: "openai", baseUrl: `${dead}/v1`, apiKey: "sk-test", model: "m" }));
  const client = new ResilientClient({ retry, targets, breaker: false, cache: true });
  const messages = [{ role: "user", content: "hi" }];
  return {
    fetch: await settled(client.fetch(`${dead}/v1/chat/completions`, { method: "POST", body: '{"temperature":0}' })),
    events: await settled((async () => { for await (const _ of client.events(`${dead}/v1/events`)); })()),
    chat: await settled(client.chat({ messages })),
    chatStream: await settled((async () => { for await (const _ of client.chatStream({ messages })); })()),
  };
}

export default {
  async fetch(request) {
    const query = new URL(request.url).searchParams;
    const dead = query.get("dead");
    unhandled.length = 0;
    const outcomes = query.has("plain")
      ? { fetch: await settled(fetch(`${dead}/v1/chat/completions`, { method: "POST", body: "{}" })) }
      : await throughThePackage(dead);
    await new Promise((resolve) => setTimeout(resolve, 20)); // rejections are reported a turn later
    return Response.json({ outcomes, unhandled });
  },
};
