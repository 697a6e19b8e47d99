// Talking to the API: one POST per query, the Authorization header typed by the user sent with
// each one and kept only in the input field (never in storage, never in the URL).
const config = JSON.parse(document.getElementById('viewer-config').textContent);
export const QUERIES = config.queries;
export const CONFIG = config;

export class ApiError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join('; '));
    this.errors = errors;
  }
}

// The last response of each kind, for "export JSON".
export const lastResponses = new Map();

export async function graphql(name, variables, signal) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  const auth = document.getElementById('authorization');
  const value = auth ? auth.value.trim() : '';
  if (value) headers.Authorization = value;
  let response;
  try {
    response = await fetch(config.graphqlPath, {
      method: 'POST', credentials: 'same-origin', headers, signal,
      body: JSON.stringify({ query: QUERIES[name], variables }),
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError([{ message: 'The server could not be reached: ' + err.message, extensions: { code: 'NETWORK' } }]);
  }
  let body;
  try {
    body = JSON.parse(await response.text());
  } catch {
    throw new ApiError([{ message: `HTTP ${response.status}: the server did not answer with JSON`,
      extensions: { code: 'HTTP_' + response.status } }]);
  }
  if (!body || typeof body !== 'object') {
    throw new ApiError([{ message: 'Not a GraphQL response', extensions: { code: 'BAD_RESPONSE' } }]);
  }
  lastResponses.set(name, body);
  const errors = Array.isArray(body.errors) ? body.errors : [];
  if (!body.data && errors.length) throw new ApiError(errors);
  return { data: body.data || {}, errors };
}
