// The one entry point of the vendored GraphiQL bundle. The page that loads it
// (landscape_graphql/web/graphiql.py) passes its settings as a JSON data block rather than an
// inline script, so the page works under a Content-Security-Policy of script-src 'self'.
import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';
import './graphiql-page.css';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { explorerPlugin } from '@graphiql/plugin-explorer';

const config = JSON.parse(document.getElementById('graphiql-config').textContent);

// Written out instead of @graphiql/toolkit's createGraphiQLFetcher: that one also wires up
// subscriptions and multipart responses, which this read-only API has none of, and it turns a
// non-JSON answer (a proxy's 502 page, a 413) into an opaque parse error.
async function fetcher(params, opts) {
  const response = await fetch(config.graphqlPath, {
    method: 'POST',
    credentials: 'same-origin',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json',
      ...(opts && opts.headers),
    },
    body: JSON.stringify(params),
  });
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return {
      errors: [{
        message: `HTTP ${response.status} ${response.statusText}: the server did not answer with JSON`,
        extensions: { code: `HTTP_${response.status}`, body: text.slice(0, 2000) },
      }],
    };
  }
}

const root = document.getElementById('graphiql');
createRoot(root).render(
  <GraphiQL
    fetcher={fetcher}
    plugins={[explorerPlugin()]}
    defaultTabs={config.tabs}
    defaultEditorToolsVisibility="headers"
    isHeadersEditorEnabled
    shouldPersistHeaders={false}
  >
    <GraphiQL.Logo>
      {config.title}
      {config.viewerPath ? <a className="landscape-viewer-link" href={config.viewerPath}>Lineage viewer</a> : null}
    </GraphiQL.Logo>
  </GraphiQL>,
);
