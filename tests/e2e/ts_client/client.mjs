// The official TypeScript SDK v2 client against two edge replicas behind a round-robin "balancer"
// (a fetch that sends each POST to the next replica). Prints what it saw as one JSON line.
// Usage: node client.mjs <endpoint of replica 0> <endpoint of replica 1> <access token> <auto|legacy>
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const [first, second, token, mode] = process.argv.slice(2);
const replicas = [first, second];
const served = []; // [replica, method, has inputResponses]
let next = 0;

async function balancedFetch(input, init) {
  const replica = next++ % replicas.length;
  let body = {};
  try {
    body = JSON.parse(init?.body ?? "{}");
  } catch {}
  served.push([replica, body.method ?? null, Boolean(body.params?.inputResponses)]);
  return fetch(replicas[replica], init);
}

const client = new Client(
  { name: "skillrelay-e2e-ts", version: "1.0.0" },
  // 'auto' probes server/discover and stays on 2026-07-28 when served; 'legacy' uses initialize.
  { capabilities: { elicitation: {}, sampling: {}, roots: {} }, versionNegotiation: { mode } },
);
const elicited = [];
client.setRequestHandler("elicitation/create", async (request) => {
  elicited.push(request.params.message);
  const step = elicited.length;
  return { action: "accept", content: step === 1 ? { name: "Ada" } : { color: "teal" } };
});
const transport = new StreamableHTTPClientTransport(new URL(first), {
  fetch: balancedFetch,
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
await client.connect(transport);
const tools = await client.listTools();
const simple = await client.callTool({ name: "test_simple_text", arguments: {} });
const rounds = await client.callTool({ name: "test_input_required_result_multi_round", arguments: {} });
const resource = await client.readResource({ uri: "test://static-text" });
console.log(
  JSON.stringify({
    protocolVersion: client.getNegotiatedProtocolVersion(),
    tools: tools.tools.map((tool) => tool.name),
    simple: simple.content,
    rounds: rounds.content,
    resource: resource.contents,
    elicited,
    served,
  }),
);
await client.close();
