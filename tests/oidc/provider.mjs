// The authorization server the OAuth tests run on loopback: oidc-provider (OpenID Certified), configured as an
// MCP server's identity provider would be: JWT access tokens bound to the requested resource (RFC 8707), the client
// credentials grant, the authorization code grant with PKCE required, and open dynamic client registration.
//
// Reads its configuration as one JSON object on stdin: {"jwks": {"keys": [private JWKs]} (optional: one RSA key is
// made), "clients": [static clients]}. Listens on a free loopback port and prints one JSON line, {"issuer": ...},
// once it serves. For the tests only, beside the provider's own routes:
//   GET  /interaction/:uid          the pending prompt (login or consent) as JSON, instead of a page
//   POST /interaction/:uid/login    {"login": "<account>"}: the user signs in as that account
//   POST /interaction/:uid/confirm  {"scopes": [...]} (optional): the user consents to these (default: all asked)
//   POST /test/rotate               {"jwks": {...}} (optional: a new RSA key): replace the signing keys, no restart
//   POST /test/clock                {"offset": seconds}: run the provider's clock that far from the real one
//   GET  /test/stats                how often the MCP server (by its User-Agent) fetched the metadata and the JWKS
import crypto from 'node:crypto';
import http from 'node:http';

// stdout carries the one ready line; the provider's own notices go to stderr.
console.log = console.info = (...args) => process.stderr.write(`${args.join(' ')}\n`);

// Before the provider loads: every timestamp it writes (iat, exp) reads this clock.
let clockOffsetMs = 0;
const realNow = Date.now;
Date.now = () => realNow() + clockOffsetMs;

const { default: Provider } = await import('oidc-provider');

const SCOPES = ['retell-tela:read', 'retell-tela:runs', 'retell-tela:edits'];

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

async function readJson(stream) {
  let text = '';
  for await (const chunk of stream) text += chunk;
  return text.trim() ? JSON.parse(text) : {};
}

const config = await readJson(process.stdin);
let jwks = config.jwks ?? { keys: [newSigningKey()] };
const stats = { metadata: 0, jwks: 0 };

function makeProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: config.clients ?? [],
    jwks,
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', ...SCOPES],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf,
        useGrantedResource: () => true,
        // Any resource a client names gets JWT access tokens for it: the tests ask for other audiences too.
        getResourceServerInfo: () => ({
          scope: SCOPES.join(' '),
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  });
  provider.on('server_error', (ctx, error) => process.stderr.write(`server_error: ${error.stack}\n`));
  return provider;
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

let provider;
let handle;

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, { error: 'interaction_mismatch' });
  const { prompt, params, session } = details;
  if (req.method === 'GET') {
    return send(res, 200, { uid, prompt: prompt.name, details: prompt.details, client_id: params.client_id });
  }
  const body = await readJson(req);
  if (action === 'login') {
    return provider.interactionFinished(req, res, { login: { accountId: body.login } }, { mergeWithLastSubmission: false });
  }
  if (action === 'confirm') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [resource, asked] of Object.entries(missing.missingResourceScopes ?? {})) {
      const chosen = asked.filter((scope) => (body.scopes ?? asked).includes(scope));
      if (chosen.length) grant.addResourceScope(resource, chosen.join(' '));
      const refused = asked.filter((scope) => !chosen.includes(scope));
      if (refused.length) grant.rejectResourceScope(resource, refused.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return send(res, 404, { error: 'unknown_action' });
}

async function route(req, res) {
  const url = new URL(req.url, 'http://x');
  const match = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm))?$/);
  if (match) return interaction(req, res, match[1], match[2]);
  if (req.method === 'POST' && url.pathname === '/test/rotate') {
    jwks = (await readJson(req)).jwks ?? { keys: [newSigningKey()] };
    provider = makeProvider(provider.issuer);
    handle = provider.callback();
    return send(res, 200, { kids: jwks.keys.map((key) => key.kid) });
  }
  if (req.method === 'POST' && url.pathname === '/test/clock') {
    clockOffsetMs = (await readJson(req)).offset * 1000;
    return send(res, 200, { offset: clockOffsetMs / 1000 });
  }
  if (url.pathname === '/test/stats') return send(res, 200, stats);
  if ((req.headers['user-agent'] ?? '').startsWith('retell-tela-mcp/')) {  // the server's fetches, not the tests'
    if (url.pathname.startsWith('/.well-known/')) stats.metadata += 1;
    if (url.pathname === '/jwks') stats.jwks += 1;
  }
  return handle(req, res);
}

const server = http.createServer((req, res) => {
  route(req, res).catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    if (!res.headersSent) send(res, 500, { error: 'server_error', error_description: String(error.message) });
  });
});
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = makeProvider(issuer);
  handle = provider.callback();
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
